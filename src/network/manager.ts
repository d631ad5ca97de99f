import path from 'node:path';
import type { NetworkCreateRequest, NetworkRequest } from '../options.js';
import type { LeaseId } from '../cluster/index.js';
import { BadStateError, runTeardown } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import { readdirIfExists } from '../util/fs.js';
import { NameServer } from './dns.js';
import { driverFor } from './drivers/index.js';
import { DEFAULT_CHAIN_PREFIX, validateChainPrefix } from './firewall.js';
import { NO_FIREWALL, openFirewallSync, type FirewallSync } from './firewall-sync.js';
import { openNetworks, type Networks } from './networks.js';
import { openSandboxes, type Sandboxes } from './sandbox.js';
import { NetStore } from './store.js';
import { formatCidr } from './cidr.js';
import { DEFAULT_BRIDGE_SUBNET, DEFAULT_POOLS, poolSubnets, type PoolSpec } from './subnets.js';
import type { AttachRequest, ClusterMember, DriverContext, NetworkDetails, NetworkPlan, NetworkRecord, PlanContext, RootlessNetworking, SandboxStatus } from './types.js';

export interface NetworkManagerOptions {
  /**
   * The default `bridge` network: bridge device (berth0), the subnet tried first when its bridge is first
   * made (given, else the `subnetSeed`th of the pools, else 10.159.0.0/16), Docker's `bip` (used as given
   * or refused), MTU (1500).
   */
  defaultBridge?: { name?: string; subnet?: string; subnetSeed?: number; bip?: string; mtu?: number };
  /** automatic IPv4 subnets (Docker's default-address-pools); 10.160.0.0/13 in /24s when absent */
  addressPools?: readonly PoolSpec[];
  /** Prefix of Berth's iptables chains (BERTH); tests use their own. */
  chainPrefix?: string;
  /** This host in its cluster, for global-scope networks (overlay); absent without a cluster store. */
  cluster?: ClusterMember;
  /** Berth runs rootless: containers get slirp4netns, bridges and iptables are refused. */
  rootless?: RootlessNetworking;
}

/** The default bridge's first candidate: given, derived from the seed (one subnet of the pools), or fixed. */
function defaultCandidate(opts: NetworkManagerOptions): string {
  const { subnet, subnetSeed } = opts.defaultBridge ?? {};
  if (subnet) return subnet;
  if (subnetSeed === undefined) return DEFAULT_BRIDGE_SUBNET;
  const pools = opts.addressPools ?? DEFAULT_POOLS;
  const count = pools.reduce((sum, p) => sum + 2 ** (p.size - Number(p.base.split('/')[1])), 0);
  let k = subnetSeed % count;
  for (const cand of poolSubnets(pools)) if (k-- === 0) return formatCidr(cand);
  return DEFAULT_BRIDGE_SUBNET;
}

/**
 * The layer's public face: networks, sandboxes and the firewall sync, each behind its own small
 * interface (networks.ts, sandbox.ts, firewall-sync.ts), wired together here.
 */
export class Manager {
  readonly store: NetStore;
  private readonly firewall: FirewallSync;
  private readonly nets: Networks;
  private readonly sandboxes: Sandboxes;
  private readonly ctx: DriverContext;

  constructor(layout: StoreLayout, opts: NetworkManagerOptions = {}) {
    this.store = new NetStore(layout);
    this.firewall = opts.rootless ? NO_FIREWALL : openFirewallSync(this.store, validateChainPrefix(opts.chainPrefix ?? DEFAULT_CHAIN_PREFIX));
    const ctx: DriverContext = this.ctx = {
      defaultBridgeName: opts.defaultBridge?.name ?? 'berth0', netnsDir: this.store.layout.netns, ...(opts.cluster ? { cluster: opts.cluster } : {}), ...(opts.rootless ? { rootless: opts.rootless } : {}),
    };
    this.nets = openNetworks(this.store, this.firewall, {
      defaultBridge: { subnet: defaultCandidate(opts), bip: opts.defaultBridge?.bip, mtu: opts.defaultBridge?.mtu },
      pools: opts.addressPools,
      ctx,
    });
    this.sandboxes = openSandboxes(this.store, this.nets, this.firewall, ctx);
  }

  create(req: NetworkCreateRequest): Promise<{ id: string }> { return this.nets.create(req); }
  list(opts?: { filters?: string[]; cluster?: boolean }): Promise<NetworkDetails[]> { return this.nets.list(opts); }
  inspect(ref: string): Promise<NetworkDetails> { return this.nets.inspect(ref); }
  remove(ref: string, opts?: { local?: boolean }): Promise<void> { return this.nets.remove(ref, opts); }
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }> { return this.nets.prune(opts); }

  plan(req: NetworkRequest, ctx: PlanContext): Promise<NetworkPlan> { return this.sandboxes.plan(req, ctx); }
  attach(ctr: AttachRequest): Promise<SandboxStatus> { return this.sandboxes.attach(ctr); }
  detach(ctrId: string): Promise<void> { return this.sandboxes.detach(ctrId); }
  connect(network: string, ctrId: string, opts?: { ip?: string; ip6?: string; aliases?: string[] }): Promise<SandboxStatus> {
    return this.sandboxes.connect(network, ctrId, opts);
  }
  disconnect(network: string, ctrId: string, opts?: { force?: boolean }): Promise<SandboxStatus> { return this.sandboxes.disconnect(network, ctrId, opts); }
  status(ctrId: string): Promise<SandboxStatus | undefined> { return this.sandboxes.statusOf(ctrId); }
  netnsPathOf(ctrId: string): string { return this.sandboxes.netnsPathOf(ctrId); }
  reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]> { return this.sandboxes.reconcile(liveContainerIds); }
  refreshGlobal(netId: string): Promise<void> { return this.sandboxes.refreshGlobal(netId); }
  globalInUse(): Promise<NetworkRecord[]> { return this.sandboxes.globalInUse(); }
  republish(lease: LeaseId): Promise<void> { return this.sandboxes.republish(lease); }

  async reload(opts: { all?: boolean; containers?: string[] } = {}): Promise<{ reloaded: string[] }> {
    await this.firewall.reload();
    // A global network's devices and entries too: made again if gone, the entries brought to the store's.
    const global = await this.sandboxes.globalInUse();
    for (const net of global) {
      await this.nets.ensure(net);
      await this.sandboxes.refreshGlobal(net.id);
    }
    // A host whose agent died (and whose lease may have expired) is back in the cluster: the lease taken
    // above put its keys back; the agent keeps them.
    if (global.length) await this.ctx.cluster?.ensureAgent();
    const ids = await this.sandboxes.ids();
    return { reloaded: opts.containers?.length ? ids.filter((id) => opts.containers!.some((c) => id.startsWith(c))) : ids };
  }

  async repair(): Promise<void> {
    // One readdir of the locks for all three parts; each checks only the locks it takes.
    const locks = (await readdirIfExists(this.store.layout.locks)).map((f) => path.join(this.store.layout.locks, f));
    await this.sandboxes.repair(locks);
    await this.firewall.repair(locks);
    await this.nets.repair(locks);
  }

  /**
   * Removes every host object Berth made for this root that no container uses: name servers, bridges
   * (records stay; they are made again on demand), and Berth's chains with their jump rules. For
   * uninstalling and for tests; refuses while sandboxes exist.
   */
  async shutdown(): Promise<void> {
    const sbs = await this.store.listSandboxes();
    if (sbs.length) throw new BadStateError(`${sbs.length} containers still have network sandboxes`, 'stop them first, or run reconcile');
    // Rootless: no bridge or name server was ever made (slirp4netns goes with each sandbox).
    if (this.ctx.rootless) return;
    const nets = await this.store.listNetworks();
    await runTeardown([
      ...nets.map((n) => () => new NameServer(this.store.dnsDir(n.id)).stop()),
      ...nets.map((n) => () => driverFor(n.driver).deleteNetwork(n as NetworkRecord, this.ctx)),
      () => this.firewall.removeAll(),
    ]);
  }
}
