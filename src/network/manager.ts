import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { NetworkCreateRequest, NetworkSummary } from '../types.js';
import type { NetworkRequest } from '../options.js';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError, runTeardown } from '../errors.js';
import { NAME_PATTERN, newNetworkId, shortId } from '../ids.js';
import type { StoreLayout } from '../paths.js';
import { failpoint } from '../util/failpoint.js';
import { ensureDir, readdirIfExists, removeDeadTemps } from '../util/fs.js';
import { assignableRange, formatIpv4, parseCidr } from './cidr.js';
import { parseCidr6 } from './cidr6.js';
import { NameServer } from './dns.js';
import { driverFor } from './drivers/index.js';
import { usableUpstreams, validateNetworkRequest } from './files.js';
import {
  anythingOurs, chainNames, chainsPresent, DEFAULT_CHAIN_PREFIX, iptablesRestore, iptablesSave, jumpFixes, ownersInSave, renderAppend, renderRemoval, renderRestore,
  rulesOwnedBy, validateChainPrefix,
} from './firewall.js';
import { HostPorts } from './hostports.js';
import { hostNetnsPath, hostRoutes, hostRoutes6, ipBatch, ipv6DisabledInNewNetns, isMountPoint, removeNetns, type Side } from './hostnet.js';
import { AddressPool, releaseOrphans } from './ipam.js';
import { coalesced, withFileLock } from './mutex.js';
import { isStaleLock } from '../util/lock.js';
import { portRequests } from './portspec.js';
import { readHostFiles, sandboxStatus, type HostFiles } from './status.js';
import { NetStore } from './store.js';
import { IPV4, IPV6, planPool, splitByFamily } from './subnets.js';
import type {
  AttachRequest, DriverContext, EndpointRecord, FirewallEndpoint, FirewallRules, NetworkDriver, NetworkRecord, Sandbox,
  SandboxRecord, SandboxStatus,
} from './types.js';

export interface NetworkManagerOptions {
  /** The default `bridge` network: bridge device (berth0), subnet (10.88.0.0/16), MTU (1500). */
  defaultBridge?: { name?: string; subnet?: string; mtu?: number };
  /** Prefix of Berth's iptables chains (BERTH); tests use their own. */
  chainPrefix?: string;
}

const BUILTIN = ['bridge', 'host', 'none'] as const;

/** The ip lines drivers queue while joining, run as few processes as possible (see Sandbox). */
class SandboxBuilder implements Sandbox {
  readonly hostNetnsPath = hostNetnsPath();
  private readonly steps: { side: Side; lines: string[] }[] = [];

  /** set by the manager when an endpoint has IPv6 and a new netns would start with it off */
  enableIpv6 = false;

  constructor(readonly containerId: string, readonly netnsPath: string, private created: boolean) {
    if (!created) this.steps.push({ side: 'inside', lines: ['link set lo up'] });
  }

  inside(lines: readonly string[]): void { this.queue('inside', lines); }
  outside(lines: readonly string[]): void { this.queue('outside', lines); }

  private queue(side: Side, lines: readonly string[]): void {
    const last = this.steps[this.steps.length - 1];
    if (last?.side === side) last.lines.push(...lines);
    else this.steps.push({ side, lines: [...lines] });
  }

  async flush(): Promise<void> {
    for (const step of this.steps.splice(0)) {
      if (step.side === 'outside') await ipBatch(step.lines, { side: 'outside' });
      else await ipBatch(step.lines, { side: 'inside', netns: this.netnsPath, create: !this.created, enableIpv6: this.enableIpv6 });
      if (step.side === 'inside') { this.created = true; this.enableIpv6 = false; }
    }
  }
}

export class Manager {
  readonly store: NetStore;
  private readonly prefix: string;
  private readonly ctx: DriverContext;
  private readonly ports: HostPorts;
  private readonly defaults: { subnet: string; mtu?: number };
  private hostFilesCache: HostFiles | undefined;
  /**
   * What this process knows of Berth's chains per family: they exist only while some network's device
   * does (IPv6: some network with an IPv6 subnet). 'present' also means the jumps were checked.
   */
  private readonly chainState: Record<4 | 6, 'unknown' | 'present' | 'absent'> = { 4: 'unknown', 6: 'unknown' };
  private forceJumpCheck = false;
  private readonly dnsSyncs = new Map<string, () => Promise<void>>();

  constructor(layout: StoreLayout, opts: NetworkManagerOptions = {}) {
    this.store = new NetStore(layout);
    this.prefix = validateChainPrefix(opts.chainPrefix ?? DEFAULT_CHAIN_PREFIX);
    this.ctx = { defaultBridgeName: opts.defaultBridge?.name ?? 'berth0' };
    this.defaults = { subnet: opts.defaultBridge?.subnet ?? '10.88.0.0/16', mtu: opts.defaultBridge?.mtu };
    parseCidr(this.defaults.subnet, 'default bridge subnet');
    this.ports = new HostPorts(this.store.portsDir, this.store.locks.ports());
  }

  private get host(): HostFiles {
    return (this.hostFilesCache ??= readHostFiles());
  }

  // ------------------------------------------------------------ networks

  /**
   * Every network, after making the built-in ones on first use (their records give them stable ids, as
   * Docker's) and finishing what a killed `network create` or `rm` left flagged.
   */
  private async networks(): Promise<NetworkRecord[]> {
    const nets = await this.store.listNetworks();
    if (BUILTIN.every((n) => nets.some((r) => r.name === n && r.builtin)) && !nets.some(unfinished)) return nets;
    return withFileLock(this.store.locks.networks(), () => this.ensureBuiltinsLocked());
  }

  /** The caller holds the networks lock, which every create and rm holds throughout: a flagged record is a dead one's. */
  private async ensureBuiltinsLocked(): Promise<NetworkRecord[]> {
    let nets = await this.store.listNetworks();
    if (nets.some(unfinished)) {
      // Undo a killed create, finish a killed rm: the same teardown, which deletes only what the record made.
      for (const net of nets.filter(unfinished)) await this.destroyLocked(net);
      nets = nets.filter((n) => !unfinished(n));
    }
    for (const name of BUILTIN) {
      if (nets.some((r) => r.name === name)) continue;
      const rec = this.newRecord(name, name, {
        ...(name === 'bridge' ? { ipam: { subnet: this.defaults.subnet, gateway: formatIpv4(assignableRange(parseCidr(this.defaults.subnet, 'subnet')).first) } } : {}),
        options: name === 'bridge' && this.defaults.mtu ? { 'com.docker.network.driver.mtu': String(this.defaults.mtu) } : {},
        builtin: true,
      });
      await this.store.writeNetwork(rec);
      nets.push(rec);
    }
    return nets;
  }

  private newRecord(name: string, driver: string, part: Partial<NetworkRecord>): NetworkRecord {
    const id = newNetworkId();
    const internal = part.internal ?? false;
    const options = part.options ?? {};
    const d = driverFor(driver);
    return {
      id, name, driver, created: new Date().toISOString(), internal, ipv6: false, options, labels: {}, ...part,
      driverOptions: d.parseOptions(options, { id, name, internal }, this.ctx),
      // Docker: the default bridge has no embedded DNS, user-defined networks do.
      dns: d.supportsDns && name !== 'bridge',
    };
  }

  async create(req: NetworkCreateRequest): Promise<{ id: string }> {
    if (!NAME_PATTERN.test(req.name)) throw new InvalidArgumentError('network name', `"${req.name}" must match ${NAME_PATTERN}`);
    const driver = driverFor(req.driver ?? 'bridge');
    if (driver.mode !== 'private') throw new InvalidArgumentError('driver', `only one ${driver.kind} network can exist`, 'use the built-in one');
    if (req.ipv6 && !driver.needsSubnet) throw new InvalidArgumentError('ipv6', `the ${driver.kind} driver has no IP addresses to give`);
    return withFileLock(this.store.locks.networks(), async () => {
      const nets = await this.ensureBuiltinsLocked();
      if (nets.some((n) => n.name === req.name)) throw new AlreadyExistsError('network', req.name);
      const pools = driver.needsSubnet ? this.planSubnets(req, nets) : {};
      const rec = this.newRecord(req.name, driver.kind, {
        internal: req.internal ?? false, ipv6: req.ipv6 ?? false, options: { ...req.options }, labels: { ...req.labels }, ...pools,
      });
      const bridgeOf = (n: NetworkRecord) => (n.driver === 'bridge' ? (n.driverOptions as { bridge: string }).bridge : undefined);
      const clash = bridgeOf(rec) && nets.find((n) => bridgeOf(n) === bridgeOf(rec));
      if (clash) throw new InvalidArgumentError('opt', `bridge ${bridgeOf(rec)} is already used by network ${clash.name}`);
      const adopted = await driver.adopt?.(rec);
      if (adopted) rec.adopted = adopted;
      // Docker makes the bridge at create: a bad name or subnet fails here, not at the first `run`.
      rec.incomplete = true;
      await this.store.writeNetwork(rec);
      try {
        await withFileLock(this.store.locks.network(rec.id), () => driver.createNetwork(rec));
        await this.applyFirewall();
        failpoint('network.create.mid');
        delete rec.incomplete;
        await this.store.writeNetwork(rec);
      } catch (err) {
        await this.destroyLocked(rec).catch(() => {});
        throw err;
      }
      return { id: rec.id };
    });
  }

  /**
   * Removes a network's host objects, then its record, then its rules (every step runs; gone is done).
   * The caller holds the networks lock. Also the repair of a killed create or rm.
   */
  private async destroyLocked(net: NetworkRecord): Promise<void> {
    if (!net.removing) {
      net.removing = true;
      await this.store.writeNetwork(net);
    }
    await withFileLock(this.store.locks.network(net.id), () => runTeardown([
      () => new NameServer(this.store.dnsDir(net.id)).stop(),
      () => driverFor(net.driver).deleteNetwork(net),
      async () => failpoint('network.rm.mid'),
      () => fsp.rm(this.store.ipamDir(net.id), { recursive: true, force: true }),
      () => this.store.removeNetwork(net.id),
    ]));
    await this.applyFirewall();
  }

  /** One IPv4 subnet, and one IPv6 subnet with --ipv6 (given or from the ULA pool); see subnets.ts. */
  private planSubnets(req: NetworkCreateRequest, nets: readonly NetworkRecord[]): Pick<NetworkRecord, 'ipam' | 'ipam6'> {
    const want = splitByFamily(req);
    const taken = (pick: (n: NetworkRecord) => NetworkRecord['ipam']) => nets.flatMap((n) => (pick(n) ? [{ name: n.name, subnet: pick(n)!.subnet }] : []));
    const ipam = planPool(IPV4, want.v4, taken((n) => n.ipam), hostRoutes());
    if (!req.ipv6) return { ipam };
    return { ipam, ipam6: planPool(IPV6, want.v6, taken((n) => n.ipam6), hostRoutes6()) };
  }

  private async find(ref: string): Promise<NetworkRecord> {
    const nets = await this.networks();
    const hit = nets.find((n) => n.name === ref) ?? nets.find((n) => n.id === ref);
    if (hit) return hit;
    const byPrefix = ref.length >= 3 ? nets.filter((n) => n.id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0]!;
    throw new NotFoundError('network', ref);
  }

  async list(opts: { filters?: string[] } = {}): Promise<NetworkSummary[]> {
    const [nets, sbs] = await Promise.all([this.networks(), this.store.listSandboxes()]);
    const filters = (opts.filters ?? []).map(parseFilter);
    return nets.filter((n) => filters.every((f) => matches(n, f))).map((n) => summarize(n, sbs));
  }

  async inspect(ref: string): Promise<NetworkSummary> {
    const net = await this.find(ref);
    return summarize(net, await this.store.listSandboxes());
  }

  async remove(ref: string): Promise<void> {
    const found = await this.find(ref);
    if (found.builtin) throw new BadStateError(`${found.name} is a pre-defined network and cannot be removed`, 'remove the networks you created instead');
    await withFileLock(this.store.locks.networks(), async () => {
      const net = await withFileLock(this.store.locks.network(found.id), async () => {
        const rec = (await this.store.listNetworks()).find((n) => n.id === found.id);
        if (!rec) throw new NotFoundError('network', ref);
        const users = (await this.store.listSandboxes()).filter((s) => s.endpoints.some((e) => e.networkId === rec.id));
        if (users.length) {
          throw new BadStateError(`network ${rec.name} has active endpoints: ${users.map((u) => u.name).join(', ')}`, 'stop or disconnect those containers first');
        }
        // Flagged under the network lock: a sandbox that joins after the check finds it going (ensureNetwork).
        rec.removing = true;
        await this.store.writeNetwork(rec);
        return rec;
      });
      await this.destroyLocked(net);
    });
  }

  async prune(): Promise<{ deleted: string[] }> {
    const [nets, sbs] = await Promise.all([this.networks(), this.store.listSandboxes()]);
    const deleted: string[] = [];
    for (const net of nets.filter((n) => !n.builtin && !sbs.some((s) => s.endpoints.some((e) => e.networkId === n.id)))) {
      try {
        await this.remove(net.id);
        deleted.push(net.name);
      } catch (err) {
        if (!(err instanceof BadStateError) && !(err instanceof NotFoundError)) throw err;
      }
    }
    return { deleted };
  }

  /** Makes the network's host objects (bridge, VLAN link) and its firewall rules, once. */
  private async ensureNetwork(net: NetworkRecord, driver: NetworkDriver<unknown>): Promise<void> {
    const made = await withFileLock(this.store.locks.network(net.id), async () => {
      if (!(await this.store.listNetworks()).some((n) => n.id === net.id && !n.removing)) throw new NotFoundError('network', net.name);
      const before = driver.kind === 'bridge' ? (net.driverOptions as { bridge: string }).bridge : undefined;
      const existed = before ? (await fsp.stat(`/sys/class/net/${before}`).then(() => true, () => false)) : true;
      await driver.createNetwork(net);
      return !existed;
    });
    // The network's rules and our jumps go in with the bridge (after a reboot too: it takes the bridge).
    // Not re-checked per attach: a check is two processes and a rewrite deletes rules (see renderAppend);
    // after a firewall flush, `network reload` puts them back, as Docker needs a daemon restart.
    if (made) await this.applyFirewall();
  }

  // ------------------------------------------------------------ firewall and names

  /** Rewrites Berth's chains from the records (coalesced: parallel callers share runs). */
  private readonly applyFirewall = coalesced(() => withFileLock(this.store.locks.firewall(this.prefix), async () => {
    const [nets, sbs] = await Promise.all([this.store.listNetworks(), this.store.listSandboxes()]);
    const rules = this.firewallRules(nets, sbs.filter((s) => !s.removing));
    failpoint('network.firewall.mid-rewrite');
    const force = this.forceJumpCheck;
    await Promise.all([this.applyFamily(4, rules, force), this.applyFamily(6, this.firewallRules6(nets), force)]);
    this.forceJumpCheck = false;
  }));

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
   * Adds a new sandbox's port rules by appending them to our chains: ~1 ms, where a rewrite costs ~30
   * (renderAppend). Order within a chain does not matter for them: they only accept or translate traffic
   * to one container's ports, which no network rule drops. The save shows whether a rewrite since the
   * record was written already holds them (then nothing to do) and whether our chains exist at all.
   */
  private async addPortRules(sb: SandboxRecord, nets: readonly NetworkRecord[]): Promise<void> {
    const appended = await withFileLock(this.store.locks.firewall(this.prefix), async () => {
      const saved = await iptablesSave();
      if (!chainsPresent(saved, this.prefix)) return false;
      if (ownersInSave(saved, this.prefix).has(sb.containerId)) return true;
      const mine = rulesOwnedBy(this.firewallRules(nets, [sb]), sb.containerId);
      await iptablesRestore(renderAppend(this.prefix, mine, jumpFixes(saved, this.prefix)));
      this.chainState[4] = 'present';
      return true;
    });
    if (!appended) await this.applyFirewall();
  }

  /** Every firewall-driver network's rules for these sandboxes, in Berth's chains. */
  private firewallRules(nets: readonly NetworkRecord[], sbs: readonly SandboxRecord[]): Required<FirewallRules> {
    const chains = chainNames(this.prefix);
    const rules = emptyRules();
    for (const net of nets) {
      const driver = driverFor(net.driver);
      if (!driver.firewall) continue;
      const eps: FirewallEndpoint[] = sbs.flatMap((s) => s.endpoints
        .filter((e) => e.networkId === net.id && e.ipv4)
        .map((e) => ({ containerId: s.containerId, ipv4: e.ipv4!, ports: this.portsEndpoint(s, nets) === e ? s.ports : [] })));
      mergeRules(rules, driver.firewall(net, eps, chains));
    }
    return rules;
  }

  /** The ip6tables rules of every network with an IPv6 subnet. */
  private firewallRules6(nets: readonly NetworkRecord[]): Required<FirewallRules> {
    const chains = chainNames(this.prefix);
    const rules = emptyRules();
    for (const net of nets.filter((n) => n.ipam6 && driverFor(n.driver).firewall6)) mergeRules(rules, driverFor(net.driver).firewall6!(net, chains));
    return rules;
  }

  /** Ports are published on the first endpoint whose driver does NAT (Docker: the gateway endpoint). */
  private portsEndpoint(sb: SandboxRecord, nets: readonly NetworkRecord[]): EndpointRecord | undefined {
    return sb.endpoints.find((e) => {
      const net = nets.find((n) => n.id === e.networkId);
      return net && !net.internal && driverFor(net.driver).firewall;
    });
  }

  /** Rewrites one network's names and starts or stops its name server (coalesced per network). */
  private syncDns(net: NetworkRecord): Promise<void> {
    if (!net.dns || !net.ipam) return Promise.resolve();
    let sync = this.dnsSyncs.get(net.id);
    if (!sync) {
      sync = coalesced(() => withFileLock(this.store.locks.network(net.id), async () => {
        const sbs = (await this.store.listSandboxes()).filter((s) => !s.removing);
        // IPv6 lines become AAAA records; dnsmasq still listens on the IPv4 gateway only.
        const entries = sbs.flatMap((s) => s.endpoints
          .filter((e) => e.networkId === net.id && e.ipv4)
          .flatMap((e) => [e.ipv4!, ...(e.ipv6 ? [e.ipv6] : [])].map((ip) => ({ ip, names: [s.name, shortId(s.containerId), ...e.aliases] }))));
        const server = new NameServer(this.store.dnsDir(net.id));
        if (!entries.length) return server.stop();
        await server.sync(net.ipam!.gateway, entries, usableUpstreams(this.host.resolv));
      }));
      this.dnsSyncs.set(net.id, sync);
    }
    return sync();
  }

  // ------------------------------------------------------------ sandboxes

  netnsPathOf(ctrId: string): string {
    return this.store.netnsPath(ctrId);
  }

  validateRequest(req: NetworkRequest): void {
    validateNetworkRequest(req);
  }

  async attach(ctr: AttachRequest): Promise<SandboxStatus> {
    if (await this.store.readSandbox(ctr.id)) await this.detach(ctr.id); // a stop that never detached
    const req = ctr.request ?? {};
    const names = req.networks?.length ? req.networks : ['bridge'];
    const base: SandboxRecord = {
      containerId: ctr.id, name: ctr.name, hostname: ctr.hostname, ...(ctr.domainname ? { domainname: ctr.domainname } : {}),
      mode: 'private', request: req, exposedPorts: ctr.exposedPorts ?? [], links: ctr.links ?? [], endpoints: [], ports: [], incomplete: true,
    };
    if (ctr.sharedWith || names[0]!.startsWith('container:')) return this.attachShared(base, ctr, names);
    const nets = await Promise.all(names.map((n) => this.find(n)));
    const modes = nets.map((n) => driverFor(n.driver).mode);
    if (modes.some((m) => m !== 'private') && nets.length > 1) {
      throw new InvalidArgumentError('network', `${names.join(', ')}: host and none cannot be combined with other networks`);
    }
    if (modes[0] === 'host') return this.finish({ ...base, mode: 'host', incomplete: false });
    // No netns file for none: runc makes a fresh netns when given no path and brings its lo up itself,
    // which saves an unshare at start and an umount at the end.
    if (modes[0] === 'none') return this.finish({ ...base, mode: 'none', incomplete: false });
    try {
      return await this.attachPrivate(base, nets);
    } catch (err) {
      await this.detach(ctr.id).catch(() => {});
      throw err;
    }
  }

  private async attachShared(base: SandboxRecord, ctr: AttachRequest, names: string[]): Promise<SandboxStatus> {
    if (names.length > 1 || !ctr.sharedWith) throw new InvalidArgumentError('network', 'container:X takes no other networks, and needs the container resolved to its id');
    if (ctr.request?.publish?.length || ctr.request?.publishAll) {
      throw new InvalidArgumentError('publish', 'conflicting options: port publishing and the container type network mode');
    }
    const owner = await this.store.readSandbox(ctr.sharedWith.id);
    if (!owner || owner.removing) throw new BadStateError(`cannot join the network of container ${shortId(ctr.sharedWith.id)}: it has no sandbox`, 'start that container first');
    const netnsPath = owner.netnsPath ?? (owner.mode === 'none' ? runcMadeNetns(owner, ctr.sharedWith.pid) : undefined);
    const sb: SandboxRecord = { ...base, mode: 'container', sharedWith: owner.containerId, incomplete: false, ...(netnsPath ? { netnsPath } : {}) };
    await this.store.writeSandbox(sb);
    // Docker: a container in another's netns sees that container's hosts and resolv.conf.
    const status = await this.statusOf(owner);
    return { ...status, mode: owner.mode === 'host' ? 'host' : 'container', ports: [], endpoints: [], ...(netnsPath ? { netnsPath } : {}) };
  }

  private async attachPrivate(base: SandboxRecord, nets: NetworkRecord[]): Promise<SandboxStatus> {
    const req = base.request;
    const sb: SandboxRecord = { ...base, netnsPath: this.netnsPathOf(base.containerId) };
    if (req.ip && (nets[0]!.builtin || !nets[0]!.ipam)) throw new InvalidArgumentError('ip', 'user specified IP address is supported on user defined networks only');
    if (req.ip6 && !nets[0]!.ipam6) throw new InvalidArgumentError('ip6', `--ip6 ${req.ip6}: network ${nets[0]!.name} has no IPv6 subnet`, 'create the network with --ipv6');
    if (req.mac && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(req.mac)) throw new InvalidArgumentError('mac-address', `${req.mac} is not a MAC address`);
    const requests = portRequests(req.publish ?? [], req.publishAll ?? false, base.exposedPorts);
    if (requests.length && !this.portsEndpoint({ ...sb, endpoints: nets.map((n) => ({ networkId: n.id }) as EndpointRecord) }, nets)) {
      throw new InvalidArgumentError('publish', 'ports can only be published on a bridge network that is not internal');
    }
    sb.endpoints = nets.map((net, i) => this.plannedEndpoint(sb, net, i));
    const routed = sb.endpoints.find((_, i) => !nets[i]!.internal);
    if (routed) routed.defaultRoute = true;
    const routed6 = sb.endpoints.find((_, i) => !nets[i]!.internal && nets[i]!.ipam6);
    if (routed6) routed6.defaultRoute6 = true;
    await this.store.writeSandbox(sb); // incomplete, before any host object exists
    sb.ports = await this.ports.reserve(sb.containerId, requests);
    await this.store.writeSandbox(sb);

    await ensureDir(this.store.layout.netns);
    const builder = new SandboxBuilder(sb.containerId, sb.netnsPath!, false);
    builder.enableIpv6 = nets.some((n) => n.ipam6) && ipv6DisabledInNewNetns();
    for (const [i, ep] of sb.endpoints.entries()) {
      const net = nets[i]!;
      const driver = driverFor(net.driver);
      await this.ensureNetwork(net, driver);
      if (net.ipam) await this.allocate(sb, ep, net, i === 0 ? { ip: req.ip, ip6: req.ip6 } : {});
      Object.assign(ep, await driver.join(net, ep, builder));
    }
    await builder.flush();
    failpoint('container.run.after-veth');
    for (const ep of sb.endpoints) delete ep.incomplete;
    delete sb.incomplete;
    await this.store.writeSandbox(sb);
    await Promise.all([
      sb.ports.length ? this.addPortRules(sb, nets) : undefined,
      ...nets.map((n) => this.syncDns(n)),
    ]);
    return this.statusOf(sb);
  }

  private plannedEndpoint(sb: SandboxRecord, net: NetworkRecord, index: number): EndpointRecord {
    const hash = createHash('sha256').update(`${sb.containerId}/${net.id}`).digest('hex');
    const mac = index === 0 && sb.request.mac ? sb.request.mac.toLowerCase() : randomMac();
    const aliases = net.dns ? [...(sb.request.aliases ?? [])] : [];
    return {
      networkId: net.id, networkName: net.name, driver: net.driver, interface: `eth${index}`,
      ...(net.driver === 'bridge' ? { hostInterface: `bv${hash.slice(0, 8)}` } : {}),
      mac, aliases, incomplete: true,
    };
  }

  /** Addresses from each family the network has; the record is written after each, so detach finds them. */
  private async allocate(sb: SandboxRecord, ep: EndpointRecord, net: NetworkRecord, wanted: { ip?: string; ip6?: string }): Promise<void> {
    const ipam = net.ipam!;
    ep.ipv4 = await this.poolOf(net).allocate(sb.containerId, wanted.ip);
    ep.prefixLength = parseCidr(ipam.subnet, 'subnet').prefix;
    ep.gateway = ipam.gateway;
    await this.store.writeSandbox(sb);
    if (!net.ipam6) return;
    ep.ipv6 = await this.poolOf(net, 6).allocate(sb.containerId, wanted.ip6);
    ep.prefixLength6 = parseCidr6(net.ipam6.subnet, 'subnet').prefix;
    ep.gateway6 = net.ipam6.gateway;
    await this.store.writeSandbox(sb);
  }

  private poolOf(net: NetworkRecord, family: 4 | 6 = 4): AddressPool {
    const spec = family === 6 ? net.ipam6! : net.ipam!;
    return new AddressPool(this.store.ipamDir(net.id), this.store.locks.ipam(net.id), net.name, spec, family);
  }

  /** Frees both addresses of an endpoint (each only if the container still holds it). */
  private async release(ctrId: string, ep: EndpointRecord, net: NetworkRecord | undefined): Promise<void> {
    if (ep.ipv4 && net?.ipam) await this.poolOf(net).release(ctrId, ep.ipv4);
    if (ep.ipv6 && net?.ipam6) await this.poolOf(net, 6).release(ctrId, ep.ipv6);
  }

  private async finish(sb: SandboxRecord): Promise<SandboxStatus> {
    await this.store.writeSandbox(sb);
    return this.statusOf(sb);
  }

  private async statusOf(sb: SandboxRecord): Promise<SandboxStatus> {
    const nets = new Map((await this.store.listNetworks()).map((n) => [n.id, n]));
    const linked = new Map<string, SandboxRecord>();
    for (const l of sb.links ?? []) {
      const other = await this.store.readSandbox(l.id);
      if (other) linked.set(l.id, other);
    }
    return sandboxStatus(sb, nets, linked, this.host);
  }

  /** The current status of a container's sandbox (for inspect and file rewrites after connect). */
  async status(ctrId: string): Promise<SandboxStatus | undefined> {
    const sb = await this.store.readSandbox(ctrId);
    return sb && !sb.removing ? this.statusOf(sb) : undefined;
  }

  async detach(ctrId: string): Promise<void> {
    const sb = await this.store.readSandbox(ctrId);
    if (!sb) return this.sweep(ctrId);
    sb.removing = true;
    await this.store.writeSandbox(sb);
    const nets = await this.store.listNetworks();
    const netOf = (ep: EndpointRecord) => nets.find((n) => n.id === ep.networkId);
    await runTeardown([
      ...sb.endpoints.map((ep) => async () => {
        const net = netOf(ep);
        const going = sb.mode === 'private' && isMountPoint(this.netnsPathOf(ctrId));
        if (net) await driverFor(net.driver).leave(net, ep, { ...sb, sandboxGoing: going });
      }),
      ...sb.endpoints.map((ep) => () => this.release(ctrId, ep, netOf(ep))),
      async () => { if (sb.ports.length) await this.ports.releaseWhere((o) => o !== ctrId); },
      async () => { if (sb.ports.length) await this.applyFirewall(); },
      ...sb.endpoints.map((ep) => async () => { const net = netOf(ep); if (net) await this.syncDns(net); }),
      // none sandboxes recorded before runc made their netns still have a file.
      async () => { if (sb.netnsPath && (sb.mode === 'private' || sb.mode === 'none')) await removeNetns(this.netnsPathOf(ctrId)); },
    ]);
    await this.store.removeSandbox(ctrId);
  }

  /** Detach without a record (lost in a crash): whatever carries the id by name or owner goes. */
  private async sweep(ctrId: string): Promise<void> {
    const nets = await this.store.listNetworks();
    await runTeardown([
      () => removeNetns(this.netnsPathOf(ctrId)),
      ...nets.map((n) => async () => { await releaseOrphans(this.store.ipamDir(n.id), (o) => o !== ctrId); }),
      async () => { await this.ports.releaseWhere((o) => o !== ctrId); },
    ]);
  }

  async repair(): Promise<void> {
    // A sandbox record torn by a kill mid-write leaves its temp file; only dead writers' are removed.
    await removeDeadTemps(this.store.sandboxDir);
    const firewall = this.store.locks.firewall(this.prefix);
    let networksToo = false;
    for (const f of await readdirIfExists(this.store.layout.locks)) {
      const file = path.join(this.store.layout.locks, f);
      if ((file === this.store.locks.networks() || f.startsWith('net-')) && (await isStaleLock(file))) {
        networksToo = true;
      } else if (file === firewall) {
        if (!(await isStaleLock(file))) continue;
        // A restore is atomic per table, but a killed rewrite may have done one table or one family:
        // do it again, jumps included.
        this.forceJumpCheck = true;
        await this.applyFirewall();
      } else if ((f.startsWith('ipam-') || f === path.basename(this.store.locks.ports())) && (await isStaleLock(file))) {
        // Each address and port file is written whole, and a partial reservation is its owner's to
        // release: nothing to finish, only the lock to clear, which taking it does.
        await withFileLock(file, async () => {});
      }
    }
    // A killed `network create` or `rm`: listing the networks finishes or undoes it (under the networks lock).
    if (networksToo) await this.networks();
  }

  async reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]> {
    const cleaned: string[] = [];
    for (const sb of await this.store.listSandboxes()) {
      if (liveContainerIds.has(sb.containerId)) continue;
      await this.detach(sb.containerId);
      cleaned.push(`sandbox ${sb.containerId}`);
    }
    for (const name of await readdirIfExists(this.store.layout.netns)) {
      if (liveContainerIds.has(name) || name.startsWith('.')) continue;
      await removeNetns(this.netnsPathOf(name));
      cleaned.push(`netns ${name}`);
    }
    const nets = await this.store.listNetworks();
    for (const net of nets) {
      for (const ip of await releaseOrphans(this.store.ipamDir(net.id), (o) => liveContainerIds.has(o))) cleaned.push(`address ${ip} on ${net.name}`);
    }
    for (const p of await this.ports.releaseWhere((o) => liveContainerIds.has(o))) cleaned.push(`port ${p}`);
    const owners = ownersInSave(await iptablesSave(), this.prefix);
    const stale = [...owners].filter((o) => !liveContainerIds.has(o));
    if (stale.length) {
      await this.applyFirewall();
      cleaned.push(...stale.map((o) => `iptables rules of ${o}`));
    }
    for (const net of nets) await this.syncDns(net);
    return cleaned;
  }

  // ------------------------------------------------------------ connect, disconnect, reload

  async connect(network: string, ctrId: string, opts: { ip?: string; ip6?: string; aliases?: string[] } = {}): Promise<SandboxStatus> {
    const net = await this.find(network);
    const driver = driverFor(net.driver);
    const sb = await this.store.readSandbox(ctrId);
    if (!sb || sb.removing) throw new BadStateError(`container ${shortId(ctrId)} has no network sandbox`, 'start the container first: connect changes a running container');
    if (sb.mode !== 'private' || driver.mode !== 'private') throw new BadStateError(`container ${sb.name} uses network mode ${sb.mode}`, 'only containers on bridge-like networks can be connected');
    if (sb.endpoints.some((e) => e.networkId === net.id)) throw new AlreadyExistsError('network', `endpoint of ${sb.name} on ${net.name}`, 'disconnect it first');
    if (opts.ip6 && !net.ipam6) throw new InvalidArgumentError('ip6', `--ip6 ${opts.ip6}: network ${net.name} has no IPv6 subnet`, 'create the network with --ipv6');
    const used = new Set(sb.endpoints.map((e) => e.interface));
    let index = 0;
    while (used.has(`eth${index}`)) index++;
    const ep = this.plannedEndpoint({ ...sb, request: { ...sb.request, mac: undefined, aliases: opts.aliases ?? [] } }, net, index);
    if (!net.internal && !sb.endpoints.some((e) => e.defaultRoute)) ep.defaultRoute = true;
    if (!net.internal && net.ipam6 && !sb.endpoints.some((e) => e.defaultRoute6)) ep.defaultRoute6 = true;
    sb.endpoints.push(ep);
    await this.store.writeSandbox(sb);
    try {
      await this.ensureNetwork(net, driver);
      if (net.ipam) await this.allocate(sb, ep, net, { ip: opts.ip, ip6: opts.ip6 });
      const builder = new SandboxBuilder(ctrId, sb.netnsPath!, true);
      // A netns made before it had any IPv6 endpoint may have IPv6 off.
      builder.enableIpv6 = !!net.ipam6 && ipv6DisabledInNewNetns();
      Object.assign(ep, await driver.join(net, ep, builder));
      await builder.flush();
    } catch (err) {
      // Undo the half-made endpoint (address, veth, record) so that a retry starts clean.
      await this.disconnect(network, ctrId, { force: true }).catch(() => {});
      throw err;
    }
    delete ep.incomplete;
    await this.store.writeSandbox(sb);
    await this.syncDns(net);
    return this.statusOf(sb);
  }

  async disconnect(network: string, ctrId: string, _opts: { force?: boolean } = {}): Promise<SandboxStatus> {
    const net = await this.find(network);
    const sb = await this.store.readSandbox(ctrId);
    const ep = sb?.endpoints.find((e) => e.networkId === net.id);
    if (!sb || !ep) throw new NotFoundError('network', `endpoint of ${shortId(ctrId)} on ${net.name}`, 'see the container\'s networks with "berth inspect"');
    sb.endpoints = sb.endpoints.filter((e) => e !== ep);
    await runTeardown([
      () => driverFor(net.driver).leave(net, ep, { ...sb, sandboxGoing: false }),
      async () => { await ipBatch([`link del ${ep.interface}`], { side: 'inside', netns: sb.netnsPath! }).catch((err) => { if (!/Cannot find device/.test(String((err as Error).message))) throw err; }); },
      () => this.release(ctrId, ep, net),
      () => this.store.writeSandbox(sb),
      () => this.applyFirewall(),
      () => this.syncDns(net),
    ]);
    return this.statusOf(sb);
  }

  /** Puts the jump rules back (exactly one copy each) and rewrites Berth's chains. */
  async reload(opts: { all?: boolean; containers?: string[] } = {}): Promise<{ reloaded: string[] }> {
    this.forceJumpCheck = true;
    await this.applyFirewall();
    const ids = (await this.store.listSandboxes()).filter((s) => !s.removing).map((s) => s.containerId);
    return { reloaded: opts.containers?.length ? ids.filter((id) => opts.containers!.some((c) => id.startsWith(c))) : ids };
  }

  /**
   * Removes every host object Berth made for this root that no container uses: name servers, bridges
   * (records stay; they are made again on demand), and Berth's chains with their jump rules. For
   * uninstalling and for tests; refuses while sandboxes exist.
   */
  async shutdown(): Promise<void> {
    const sbs = await this.store.listSandboxes();
    if (sbs.length) throw new BadStateError(`${sbs.length} containers still have network sandboxes`, 'stop them first, or run reconcile');
    const nets = await this.store.listNetworks();
    await runTeardown([
      ...nets.map((n) => () => new NameServer(this.store.dnsDir(n.id)).stop()),
      ...nets.map((n) => () => driverFor(n.driver).deleteNetwork(n as NetworkRecord)),
      () => withFileLock(this.store.locks.firewall(this.prefix), async () => {
        await this.removeChains(4);
        await this.removeChains(6);
      }),
    ]);
  }
}

/** A --network none container's netns is runc's, reachable only through its process. */
function runcMadeNetns(owner: SandboxRecord, pid: number | undefined): string {
  if (!pid) throw new BadStateError(`cannot join the network of container ${shortId(owner.containerId)}: its process is not known`, 'start that container first');
  return `/proc/${pid}/ns/net`;
}

function emptyRules(): Required<FirewallRules> {
  return { forward: [], isolation1: [], isolation2: [], ports: [], dnat: [], postrouting: [], raw: [] };
}

/** A record a killed `network create` or `rm` left flagged. */
function unfinished(n: NetworkRecord): boolean {
  return !!(n.incomplete || n.removing);
}

function mergeRules(into: Required<FirewallRules>, part: FirewallRules): void {
  for (const k of Object.keys(into) as (keyof FirewallRules)[]) into[k].push(...(part[k] ?? []));
}

function randomMac(): string {
  // Locally administered, unicast (02:...), random: a reused IP must not inherit a stale ARP entry.
  return ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function summarize(net: NetworkRecord, sbs: readonly SandboxRecord[]): NetworkSummary {
  const containers: NetworkSummary['containers'] = {};
  for (const sb of sbs) {
    const ep = sb.endpoints.find((e) => e.networkId === net.id);
    if (!ep || sb.removing) continue;
    containers[sb.containerId] = {
      name: sb.name, endpoint: createHash('sha256').update(`${sb.containerId}/${net.id}`).digest('hex'),
      ...(ep.ipv4 ? { ipv4: `${ep.ipv4}/${ep.prefixLength}` } : {}), ...(ep.ipv6 ? { ipv6: `${ep.ipv6}/${ep.prefixLength6}` } : {}), mac: ep.mac,
    };
  }
  return {
    id: net.id, name: net.name, driver: net.driver, scope: 'local', created: net.created, internal: net.internal, ipv6: net.ipv6,
    subnets: [net.ipam, net.ipam6].flatMap((p) => (p ? [{ subnet: p.subnet, gateway: p.gateway, ...(p.ipRange ? { ipRange: p.ipRange } : {}) }] : [])),
    options: net.options, labels: net.labels, containers,
  };
}

interface Filter { key: string; value: string }

function parseFilter(f: string): Filter {
  const at = f.indexOf('=');
  const key = f.slice(0, at);
  if (at <= 0 || !['name', 'id', 'driver', 'label', 'type'].includes(key)) {
    throw new InvalidArgumentError('filter', `"${f}" is not one of name=, id=, driver=, label=, type=`);
  }
  return { key, value: f.slice(at + 1) };
}

function matches(n: NetworkRecord, f: Filter): boolean {
  switch (f.key) {
    case 'name': return n.name.includes(f.value);
    case 'id': return n.id.startsWith(f.value);
    case 'driver': return n.driver === f.value;
    case 'type': return f.value === 'builtin' ? !!n.builtin : !n.builtin;
    default: {
      const [k, v] = f.value.split('=', 2);
      return k !== undefined && k in n.labels && (v === undefined || n.labels[k] === v);
    }
  }
}
