import { failpoint } from '../util/failpoint.js';
import { isStaleLock } from '../util/lock.js';
import { driverFor } from './drivers/index.js';
import {
  anythingOurs, chainNames, chainsPresent, iptablesRestore, iptablesSave, jumpFixes, ownersInSave, renderAppend, renderRemoval, renderRestore, rulesOwnedBy,
} from './firewall.js';
import { coalesced, withFileLock } from './mutex.js';
import { canPublish } from './plan.js';
import type { NetStore } from './store.js';
import type { EndpointRecord, FirewallEndpoint, FirewallRules, NetworkRecord, SandboxRecord } from './types.js';

/**
 * Keeps Berth's iptables chains equal to what the records say (firewall.ts renders, this applies).
 * Every rewrite is whole and from the records, so repeating one is always safe: that is the repair.
 */
export interface FirewallSync {
  /** Rewrites Berth's chains from the records (parallel callers share runs). */
  apply(): Promise<void>;
  /** Appends one new sandbox's port rules (~1 ms where a rewrite costs ~30); rewrites if the chains are missing. */
  addPortRules(sb: SandboxRecord, nets: readonly NetworkRecord[]): Promise<void>;
  /** Puts the jump rules back (exactly one copy each) and rewrites the chains. */
  reload(): Promise<void>;
  /** Redoes a rewrite a killed command left, if its lock is among `lockFiles` with a dead holder. */
  repair(lockFiles: readonly string[]): Promise<void>;
  /** Deletes every chain and jump of this prefix, both families (shutdown). */
  removeAll(): Promise<void>;
  /** Which container ids have rules in the live IPv4 ruleset (reconcile). */
  owners(): Promise<Set<string>>;
}

export function openFirewallSync(store: NetStore, prefix: string): FirewallSync {
  return new Sync(store, prefix);
}

/**
 * Rootless Berth's: it can read no ruleset and writes none (its ports go through slirp4netns), so there is
 * never a rule of its own to keep in step.
 */
export const NO_FIREWALL: FirewallSync = {
  apply: async () => {},
  addPortRules: async () => {},
  reload: async () => {},
  repair: async () => {},
  removeAll: async () => {},
  owners: async () => new Set(),
};

class Sync implements FirewallSync {
  private readonly lockFile: string;
  /**
   * What this process knows of Berth's chains per family: they exist only while some network's device
   * does (IPv6: some network with an IPv6 subnet). 'present' also means the jumps were checked.
   */
  private readonly chainState: Record<4 | 6, 'unknown' | 'present' | 'absent'> = { 4: 'unknown', 6: 'unknown' };
  private forceJumpCheck = false;

  constructor(private readonly store: NetStore, private readonly prefix: string) {
    this.lockFile = store.locks.firewall(prefix);
  }

  readonly apply = coalesced(() => withFileLock(this.lockFile, async () => {
    const [nets, sbs] = await Promise.all([this.store.listNetworks(), this.store.listSandboxes()]);
    const rules = this.rules(nets, sbs.filter((s) => !s.removing));
    failpoint('network.firewall.mid-rewrite');
    const force = this.forceJumpCheck;
    await Promise.all([this.applyFamily(4, rules, force), this.applyFamily(6, this.rules6(nets, sbs.filter((s) => !s.removing)), force)]);
    this.forceJumpCheck = false;
  }));

  reload(): Promise<void> {
    this.forceJumpCheck = true;
    return this.apply();
  }

  async repair(lockFiles: readonly string[]): Promise<void> {
    if (!lockFiles.includes(this.lockFile) || !(await isStaleLock(this.lockFile))) return;
    // A restore is atomic per table, but a killed rewrite may have done one table or one family: do it
    // again, jumps included.
    await this.reload();
  }

  removeAll(): Promise<void> {
    return withFileLock(this.lockFile, async () => {
      await this.removeChains(4);
      await this.removeChains(6);
    });
  }

  async owners(): Promise<Set<string>> {
    return ownersInSave(await iptablesSave(), this.prefix);
  }

  /**
   * Each family gets the chains and jumps while it has rules, and none otherwise (no network device, or
   * no IPv6 network): a host Berth left has nothing of Berth's, and an IPv4-only host pays no ip6tables
   * process per rewrite once this process knows they are gone.
   */
  private async applyFamily(family: 4 | 6, rules: Required<FirewallRules>, force: boolean): Promise<void> {
    if (Object.values(rules).some((r) => r.length)) {
      let fixes: ReturnType<typeof jumpFixes> = { filter: [], nat: [], raw: [] };
      if (this.chainState[family] !== 'present' || force) fixes = jumpFixes(await iptablesSave(family), this.prefix);
      await iptablesRestore(renderRestore(this.prefix, rules, fixes), family);
      this.chainState[family] = 'present';
    } else if (this.chainState[family] !== 'absent' || force) {
      await this.removeChains(family);
    }
  }

  /** Deletes our jumps (every copy) and chains in one family; the caller holds the firewall lock. */
  private async removeChains(family: 4 | 6): Promise<void> {
    const saved = await iptablesSave(family);
    if (anythingOurs(saved, this.prefix)) await iptablesRestore(renderRemoval(saved, this.prefix), family);
    this.chainState[family] = 'absent';
  }

  /**
   * Order within a chain does not matter for appended port rules: they only accept or translate traffic
   * to one container's ports, which no network rule drops. The save shows whether a rewrite since the
   * record was written already holds them (then nothing to do) and whether our chains exist at all.
   */
  async addPortRules(sb: SandboxRecord, nets: readonly NetworkRecord[]): Promise<void> {
    // IPv6 ports: a whole rewrite of both families (the append path knows iptables only).
    if (portsEndpoint(sb, nets)?.ipv6) return this.apply();
    const appended = await withFileLock(this.lockFile, async () => {
      const saved = await iptablesSave();
      if (!chainsPresent(saved, this.prefix)) return false;
      if (ownersInSave(saved, this.prefix).has(sb.containerId)) return true;
      const mine = rulesOwnedBy(this.rules(nets, [sb]), sb.containerId);
      await iptablesRestore(renderAppend(this.prefix, mine, jumpFixes(saved, this.prefix)));
      this.chainState[4] = 'present';
      return true;
    });
    if (!appended) await this.apply();
  }

  /** Every firewall-driver network's rules for these sandboxes, in Berth's chains. */
  private rules(nets: readonly NetworkRecord[], sbs: readonly SandboxRecord[]): Required<FirewallRules> {
    const chains = chainNames(this.prefix);
    const rules = emptyRules();
    for (const net of nets) {
      const driver = driverFor(net.driver);
      if (!driver.firewall) continue;
      mergeRules(rules, driver.firewall(net, firewallEndpoints(net, nets, sbs), chains));
    }
    return rules;
  }

  /** The ip6tables rules of every network with an IPv6 subnet, with its endpoints' IPv6 ports. */
  private rules6(nets: readonly NetworkRecord[], sbs: readonly SandboxRecord[]): Required<FirewallRules> {
    const chains = chainNames(this.prefix);
    const rules = emptyRules();
    for (const net of nets.filter((n) => n.ipam6 && driverFor(n.driver).firewall6)) mergeRules(rules, driverFor(net.driver).firewall6!(net, firewallEndpoints(net, nets, sbs), chains));
    return rules;
  }
}

function firewallEndpoints(net: NetworkRecord, nets: readonly NetworkRecord[], sbs: readonly SandboxRecord[]): FirewallEndpoint[] {
  return sbs.flatMap((s) => s.endpoints
    .filter((e) => e.networkId === net.id && e.ipv4)
    .map((e) => ({ containerId: s.containerId, ipv4: e.ipv4!, ...(e.ipv6 ? { ipv6: e.ipv6 } : {}), ports: portsEndpoint(s, nets) === e ? s.ports : [] })));
}

/** Ports are published on the first endpoint whose driver does NAT (Docker: the gateway endpoint). */
function portsEndpoint(sb: SandboxRecord, nets: readonly NetworkRecord[]): EndpointRecord | undefined {
  return sb.endpoints.find((e) => {
    const net = nets.find((n) => n.id === e.networkId);
    return net && canPublish(net);
  });
}

function emptyRules(): Required<FirewallRules> {
  return { forward: [], isolation1: [], isolation2: [], ports: [], dnat: [], postrouting: [], raw: [] };
}

function mergeRules(into: Required<FirewallRules>, part: FirewallRules): void {
  for (const k of Object.keys(into) as (keyof FirewallRules)[]) into[k].push(...(part[k] ?? []));
}
