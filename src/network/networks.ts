import { promises as fsp } from 'node:fs';
import { parsePruneFilter, prunable } from '../util/prune-filter.js';
import path from 'node:path';
import type { NetworkCreateRequest } from '../options.js';
import { AlreadyExistsError, BadStateError, ClusterUnavailableError, InvalidArgumentError, NotFoundError, runTeardown } from '../errors.js';
import { clusterOf, globalRecords, publishNetwork, unpublishNetwork } from './global.js';
import { NAME_PATTERN, newNetworkId } from '../ids.js';
import { failpoint } from '../util/failpoint.js';
import { isStaleLock } from '../util/lock.js';
import { assignableRange, formatCidr, formatIpv4, maskOf, parseCidr, parseIpv4 } from './cidr.js';
import { NameServer } from './dns.js';
import { driverFor } from './drivers/index.js';
import type { FirewallSync } from './firewall-sync.js';
import { hostUses, hostUses6, linkExists, type HostUse } from './hostnet.js';
import { withFileLock } from './mutex.js';
import { lookupNetwork } from './plan.js';
import type { NetStore } from './store.js';
import { DEFAULT_POOLS, hostConflict, IPV4, IPV6, parsePools, planPool, poolName, poolSubnets, splitByFamily, type HostView, type PoolSpec } from './subnets.js';
import type { Ipv4Net } from './cidr.js';
import type { Ipv6Net } from './cidr6.js';
import type { DriverContext, NetworkDetails, NetworkRecord, SandboxRecord } from './types.js';

/**
 * Networks (CNM's network, the driver's createNetwork/deleteNetwork): records under the networks lock,
 * the built-ins made on first use, and the repair of a `create` or `rm` a kill left flagged.
 */
export interface Networks {
  create(req: NetworkCreateRequest): Promise<{ id: string }>;
  /** `cluster: false`: this host's records only, the cluster store not asked (info, reset). */
  list(opts?: { filters?: string[]; cluster?: boolean }): Promise<NetworkDetails[]>;
  inspect(ref: string): Promise<NetworkDetails>;
  remove(ref: string, opts?: { local?: boolean }): Promise<void>;
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }>;
  /** Every record, built-ins made and unfinished creates/removes settled first. */
  all(): Promise<NetworkRecord[]>;
  /** `all()` after this host's copies of the cluster's global networks were refreshed. */
  refreshed(): Promise<NetworkRecord[]>;
  /** By name, id or unique id prefix; NotFoundError otherwise. */
  find(ref: string): Promise<NetworkRecord>;
  /** Makes the network's host objects (bridge, VLAN link) and its firewall rules, once; NotFoundError once it is going. */
  ensure(net: NetworkRecord): Promise<void>;
  /** Settles what a killed create or rm left, if one of `lockFiles` (network locks) has a dead holder. */
  repair(lockFiles: readonly string[]): Promise<void>;
}

export interface NetworksOptions {
  /**
   * The default bridge: `subnet` is tried first when its bridge is first made (then the pools); `bip`
   * (Docker's: the gateway address and prefix, "10.1.0.1/24") is used as given, or refused.
   */
  defaultBridge: { subnet: string; bip?: string; mtu?: number };
  /** automatic IPv4 subnets (Docker's default-address-pools); DEFAULT_POOLS when absent */
  pools?: readonly PoolSpec[];
  ctx: DriverContext;
}

export function openNetworks(store: NetStore, firewall: FirewallSync, opts: NetworksOptions): Networks {
  parseCidr(opts.defaultBridge.subnet, 'default bridge subnet');
  if (opts.defaultBridge.bip) parseBip(opts.defaultBridge.bip);
  if (opts.pools) parsePools(opts.pools);
  return new NetworkStore(store, firewall, opts);
}

/** Docker's `bip`: the bridge's own address with the subnet's prefix. */
export function parseBip(bip: string): { subnet: string; gateway: string } {
  const [addr, bits] = bip.split('/');
  const ip = parseIpv4(addr ?? '');
  const prefix = Number(bits);
  if (ip === undefined || !/^\d{1,2}$/.test(bits ?? '') || prefix > 30) {
    throw new InvalidArgumentError('bip', `"${bip}" is not an IPv4 address with a prefix, such as 10.1.0.1/24`, 'bip is the default bridge\'s own address (its gateway) with the subnet\'s prefix');
  }
  const subnet = formatCidr({ base: (ip & maskOf(prefix)) >>> 0, prefix });
  const gateway = IPV4.hostAddress(parseCidr(subnet, 'bip'), addr!);
  if (!gateway) throw new InvalidArgumentError('bip', `${bip}: ${addr} is the network or broadcast address of ${subnet}`, 'give a host address, such as the first one');
  return { subnet, gateway };
}

const BUILTIN = ['bridge', 'host', 'none'] as const;

const BRIDGE_NAME = 'com.docker.network.bridge.name';

/**
 * Host-wide, for every root: held while a subnet is checked against the host and its bridge made (the
 * check is only good until the bridge exists). Taken after a root's networks lock, before a network's.
 */
export const HOST_SUBNETS_LOCK = '/run/berth/subnets.lock';

class NetworkStore implements Networks {
  private readonly pools: readonly PoolSpec[];

  constructor(private readonly store: NetStore, private readonly firewall: FirewallSync, private readonly opts: NetworksOptions) {
    this.pools = opts.pools ?? DEFAULT_POOLS;
  }

  /**
   * Every network, after making the built-in ones on first use (their records give them stable ids, as
   * Docker's) and finishing what a killed `network create` or `rm` left flagged.
   */
  async all(): Promise<NetworkRecord[]> {
    const nets = await this.store.listNetworks();
    if (BUILTIN.every((n) => nets.some((r) => r.name === n && r.builtin)) && !nets.some(unfinished)) return nets;
    return withFileLock(this.store.locks.networks(), () => this.ensureBuiltinsLocked());
  }

  /**
   * `all()` with this host's copies of global networks brought up to date first (one read of the cluster
   * store, only when one is configured). Only what a user asks about goes there: `network ls`, a name not
   * known here; `info`, plans of known networks and every container start stay off the network.
   */
  async refreshed(): Promise<NetworkRecord[]> {
    return this.syncGlobal(await this.all());
  }

  async repair(lockFiles: readonly string[]): Promise<void> {
    const ours = (f: string) => f === this.store.locks.networks() || path.basename(f).startsWith('net-');
    const stale: string[] = [];
    for (const f of lockFiles.filter(ours)) if (await isStaleLock(f)) stale.push(f);
    if (!stale.length) return;
    // A killed `network create` or `rm`: listing the networks finishes or undoes it (under the networks
    // lock). A command killed while making a bridge holds that lock with nothing flagged: take it anyway.
    if (stale.includes(this.store.locks.networks())) await withFileLock(this.store.locks.networks(), () => this.ensureBuiltinsLocked());
    else await this.all();
    // A network's own lock guards work that is redone on demand (its bridge is made again at the next
    // attach): taking it once clears what the dead holder left.
    for (const f of stale.filter((x) => path.basename(x).startsWith('net-'))) await withFileLock(f, async () => {});
  }

  /** The caller holds the networks lock, which every create and rm holds throughout: a flagged record is a dead one's. */
  private async ensureBuiltinsLocked(): Promise<NetworkRecord[]> {
    let nets = await this.store.listNetworks();
    if (nets.some(unfinished)) {
      // Undo a killed create, finish a killed rm: the same teardown, which deletes only what the record made.
      for (const net of nets.filter(unfinished)) await this.destroyLocked(net);
      nets = nets.filter((n) => !unfinished(n));
    }
    const { subnet, mtu } = this.opts.defaultBridge;
    for (const name of BUILTIN) {
      if (nets.some((r) => r.name === name)) continue;
      const rec = this.newRecord(name, name, {
        // The subnet is a candidate until the bridge is first made (settleDefaultBridge).
        ...(name === 'bridge' ? { ipam: { subnet, gateway: formatIpv4(assignableRange(parseCidr(subnet, 'subnet')).first) }, subnetPending: true } : {}),
        options: name === 'bridge' && mtu ? { 'com.docker.network.driver.mtu': String(mtu) } : {},
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
      driverOptions: d.parseOptions(options, { id, name, internal, ...(part.ipam ? { subnet: part.ipam.subnet } : {}) }, this.opts.ctx),
      // Docker: the default bridge has no embedded DNS, user-defined networks do.
      dns: d.supportsDns && name !== 'bridge',
    };
  }

  async create(req: NetworkCreateRequest): Promise<{ id: string }> {
    if (!NAME_PATTERN.test(req.name)) throw new InvalidArgumentError('network name', `"${req.name}" must match ${NAME_PATTERN}`);
    if (this.opts.ctx.rootless) {
      throw new InvalidArgumentError('network', `rootless Berth cannot create network "${req.name}": its bridges, veths and iptables rules need the host's root`,
        'containers of a rootless user get slirp4netns each (the default), or --network none, host or container:NAME; run Berth as root for networks');
    }
    const driver = driverFor(req.driver ?? 'bridge');
    if (driver.mode !== 'private') throw new InvalidArgumentError('driver', `only one ${driver.kind} network can exist`, 'use the built-in one');
    if (req.ipv6 && !driver.needsSubnet) throw new InvalidArgumentError('ipv6', `the ${driver.kind} driver has no IP addresses to give`);
    if (driver.scope === 'global') return this.createGlobal(req);
    if (req.attachable) throw new InvalidArgumentError('attachable', `the ${driver.kind} driver makes local networks, which any container joins`, 'leave --attachable out; it is for global-scope networks (overlay, flannel)');
    return withFileLock(this.store.locks.networks(), () => withFileLock(HOST_SUBNETS_LOCK, async () => {
      const nets = await this.ensureBuiltinsLocked();
      if (nets.some((n) => n.name === req.name)) throw new AlreadyExistsError('network', req.name);
      const pools = driver.needsSubnet ? planSubnets(req, nets, {
        // Only bridges are refused over the host's routes: a macvlan's subnet is its parent's LAN by design.
        refuseOverlap: driver.kind === 'bridge', allowOverlap: !!req.allowHostOverlap, ownDevice: req.options?.[BRIDGE_NAME],
        pool: () => poolSubnets(this.pools), poolName: poolName(this.pools),
      }) : {};
      const rec = this.newRecord(req.name, driver.kind, {
        internal: req.internal ?? false, ipv6: req.ipv6 ?? false, options: { ...req.options }, labels: { ...req.labels }, ...pools,
        ...(req.allowHostOverlap ? { hostOverlapAllowed: true } : {}),
      });
      const clash = bridgeOf(rec) && nets.find((n) => bridgeOf(n) === bridgeOf(rec));
      if (clash) throw new InvalidArgumentError('opt', `bridge ${bridgeOf(rec)} is already used by network ${clash.name}`);
      const adopted = await driver.adopt?.(rec);
      if (adopted) rec.adopted = adopted;
      // Docker makes the bridge at create: a bad name or subnet fails here, not at the first `run`.
      rec.incomplete = true;
      await this.store.writeNetwork(rec);
      try {
        await withFileLock(this.store.locks.network(rec.id), () => driver.createNetwork(rec));
        if (hasRules(rec)) await this.firewall.apply();
        failpoint('network.create.mid');
        delete rec.incomplete;
        await this.store.writeNetwork(rec);
      } catch (err) {
        await this.destroyLocked(rec).catch(() => {});
        throw err;
      }
      return { id: rec.id };
    }));
  }

  /**
   * A global network (overlay): its subnet clear of every network of this root and of the cluster, and of
   * this host's routes (each other host checks its own when it first makes the network's bridge); published
   * to the cluster store with its name and VNI in one transaction, then copied here. No host object is made
   * now: each host makes its bridge and VXLAN device at its first container on the network, as Docker does.
   */
  private async createGlobal(req: NetworkCreateRequest): Promise<{ id: string }> {
    const driver = driverFor(req.driver!);
    const cluster = clusterOf(this.opts.ctx, `a network of the ${driver.kind} driver`);
    if (req.ipv6) throw new InvalidArgumentError('ipv6', `${driver.kind} networks are IPv4 only for now`, 'leave --ipv6 out');
    return withFileLock(this.store.locks.networks(), async () => {
      const nets = await this.ensureBuiltinsLocked();
      const globals = await globalRecords(cluster);
      if ([...nets, ...globals].some((n) => n.name === req.name)) throw new AlreadyExistsError('network', req.name);
      const known = [...nets, ...globals.filter((g) => !nets.some((n) => n.id === g.id))];
      const pools = planSubnets(req, known, {
        refuseOverlap: true, allowOverlap: !!req.allowHostOverlap, pool: () => poolSubnets(this.pools), poolName: poolName(this.pools),
      });
      const rec = this.newRecord(req.name, driver.kind, {
        internal: req.internal ?? false, options: { ...req.options }, labels: { ...req.labels }, ...pools, scope: 'global',
        ...(req.allowHostOverlap ? { hostOverlapAllowed: true } : {}),
      });
      await publishNetwork(cluster, rec as NetworkRecord<{ vni: number }>);
      try {
        await driver.published?.(rec, this.opts.ctx);
      } catch (err) {
        await unpublishNetwork(cluster, rec as NetworkRecord<{ vni: number }>).catch(() => {});
        throw err;
      }
      await this.store.writeNetwork(rec);
      return { id: rec.id };
    });
  }

  /**
   * Brings this host's copies of global networks to what the cluster holds: new ones copied, changed ones
   * (none change today) rewritten, withdrawn ones removed here once no container of this host is on them.
   * The store unreachable: the copies stay as they are (a warning is for the caller that needs the store).
   */
  private async syncGlobal(nets: NetworkRecord[]): Promise<NetworkRecord[]> {
    const cluster = this.opts.ctx.cluster;
    if (!cluster) return nets;
    let globals: NetworkRecord[];
    try {
      globals = await globalRecords(cluster);
    } catch (err) {
      if (err instanceof ClusterUnavailableError) return nets;
      throw err;
    }
    const out = nets.filter((n) => n.scope !== 'global' || globals.some((g) => g.id === n.id));
    for (const g of globals) if (!nets.some((n) => n.id === g.id)) { await this.store.writeNetwork(g); out.push(g); }
    const gone = nets.filter((n) => n.scope === 'global' && !globals.some((g) => g.id === n.id));
    if (gone.length) {
      const sbs = await this.store.listSandboxes();
      for (const net of gone) {
        if (sbs.some((sb) => sb.endpoints.some((e) => e.networkId === net.id))) { out.push(net); continue; }
        await withFileLock(this.store.locks.networks(), () => this.destroyLocked(net));
      }
    }
    return out;
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
      () => driverFor(net.driver).deleteNetwork(net, this.opts.ctx),
      async () => failpoint('network.rm.mid'),
      () => fsp.rm(this.store.ipamDir(net.id), { recursive: true, force: true }),
      () => this.store.removeNetwork(net.id),
    ]));
    if (hasRules(net)) await this.firewall.apply();
  }

  async find(ref: string): Promise<NetworkRecord> {
    try {
      return lookupNetwork(await this.all(), ref);
    } catch (err) {
      // A global network made on another host since this one last looked.
      if (!(err instanceof NotFoundError) || !this.opts.ctx.cluster) throw err;
      return lookupNetwork(await this.refreshed(), ref);
    }
  }

  async list(opts: { filters?: string[]; cluster?: boolean } = {}): Promise<NetworkDetails[]> {
    const [nets, sbs] = await Promise.all([opts.cluster === false ? this.all() : this.refreshed(), this.store.listSandboxes()]);
    const filters = (opts.filters ?? []).map(parseFilter);
    const host = { v4: hostUses(), v6: hostUses6() };
    // Docker's rule: values of one key are alternatives (name=a and name=b: either), labels must all match.
    const groups = new Map<Filter | string, Filter[]>();
    for (const f of filters) {
      const key = f.key === 'label' ? f : f.key;
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    return this.shown(nets).filter((n) => [...groups.values()].every((fs) => fs.some((f) => matches(n, f)))).map((n) => detailsOf(n, sbs, host));
  }

  /**
   * What `network ls` and `inspect` show. Rootless: what such a Berth really offers, as Podman's rootless
   * listing does: the default bridge (a record only, never made) stands as `slirp4netns`, every
   * container's default, beside host and none.
   */
  private shown(nets: readonly NetworkRecord[]): NetworkRecord[] {
    if (!this.opts.ctx.rootless) return [...nets];
    return nets.map((n) => (n.builtin && n.name === 'bridge' ? slirpView(n) : n));
  }

  async inspect(ref: string): Promise<NetworkDetails> {
    const net = lookupNetworkOr(this.shown(await this.all()), ref) ?? await this.find(ref);
    if (this.opts.ctx.rootless && net.builtin && net.name === 'bridge') throw new NotFoundError('network', ref, 'rootless Berth has no bridge network: its containers use slirp4netns (see "berth network ls")');
    const details = detailsOf(net, await this.store.listSandboxes(), { v4: hostUses(), v6: hostUses6() });
    const peers = this.opts.ctx.cluster ? await driverFor(net.driver).peers?.(net, this.opts.ctx).catch((err: unknown) => {
      if (err instanceof ClusterUnavailableError) return undefined; // inspect still shows what this host knows
      throw err;
    }) : undefined;
    return peers ? { ...details, peers } : details;
  }

  /**
   * `local`: a global network leaves this host only (its host objects and copy), its record stays in the
   * cluster for the other hosts (`system reset` of one host must not take a network from the others).
   */
  async remove(ref: string, opts: { local?: boolean } = {}): Promise<void> {
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
        if (rec.scope === 'global' && !opts.local) await unpublishNetwork(clusterOf(this.opts.ctx, `network ${rec.name}`), rec as NetworkRecord<{ vni: number }>);
        // Flagged under the network lock: a sandbox that joins after the check finds it going (ensure).
        rec.removing = true;
        await this.store.writeNetwork(rec);
        return rec;
      });
      await this.destroyLocked(net);
    });
  }

  async prune(opts: { filters?: string[] } = {}): Promise<{ deleted: string[] }> {
    const filter = parsePruneFilter(opts.filters);
    const [nets, sbs] = await Promise.all([this.all(), this.store.listSandboxes()]);
    const deleted: string[] = [];
    // Docker prunes local networks only: a global one may be in use on another host.
    const unused = nets.filter((n) => !n.builtin && n.scope !== 'global' && !sbs.some((s) => s.endpoints.some((e) => e.networkId === n.id)));
    for (const net of unused.filter((n) => prunable(filter, n.created, n.labels))) {
      try {
        await this.remove(net.id);
        deleted.push(net.name);
      } catch (err) {
        if (!(err instanceof BadStateError) && !(err instanceof NotFoundError)) throw err;
      }
    }
    return { deleted };
  }

  async ensure(net: NetworkRecord): Promise<void> {
    const bridge = bridgeOf(net);
    // A bridge to make: its subnet is checked (or chosen) and the bridge made while no other root does
    // the same, so two roots starting their first containers at once cannot both take one subnet.
    const made = !bridge || linkExists(bridge) ? await this.make(net)
      : await withFileLock(this.store.locks.networks(), () => withFileLock(HOST_SUBNETS_LOCK, async () => {
        await this.settleDefaultBridgeLocked(net);
        return this.make(net);
      }));
    // The network's rules and our jumps go in with the bridge (after a reboot too: it takes the bridge).
    // Not re-checked per attach: a check is two processes and a rewrite deletes rules (see renderAppend);
    // after a firewall flush, `network reload` puts them back, as Docker needs a daemon restart.
    if (made) await this.firewall.apply();
  }

  /** Makes the network's host objects under its lock; whether its bridge was made now. */
  private make(net: NetworkRecord): Promise<boolean> {
    return withFileLock(this.store.locks.network(net.id), async () => {
      if (!(await this.store.listNetworks()).some((n) => n.id === net.id && !n.removing)) throw new NotFoundError('network', net.name);
      const before = bridgeOf(net);
      const existed = before ? linkExists(before) : true;
      if (!existed && !net.adopted && !net.hostOverlapAllowed) refuseHostOverlap(net);
      await driverFor(net.driver).createNetwork(net, this.opts.ctx);
      return !existed;
    });
  }

  /**
   * The default bridge's subnet is chosen when its bridge is first made, as any automatic subnet: the
   * fixed or derived candidate, else the first free subnet of the pools, clear of the host's routes and
   * addresses and of this root's networks (another root's show up as routes once its bridge exists).
   * With `bip`, that address, or an error naming what holds it. A subnet already settled stays: a
   * bridge made before never moves (only a `bip` that differs moves it, and only while no bridge exists).
   * Updates `net` in place. The caller holds the networks lock and HOST_SUBNETS_LOCK.
   */
  private async settleDefaultBridgeLocked(net: NetworkRecord): Promise<void> {
    if (!net.builtin || net.name !== 'bridge') return;
    const bip = this.opts.defaultBridge.bip ? parseBip(this.opts.defaultBridge.bip) : undefined;
    const unsettled = (r: NetworkRecord) => !!r.subnetPending || (!!bip && (r.ipam?.subnet !== bip.subnet || r.ipam.gateway !== bip.gateway));
    const bridge = bridgeOf(net)!;
    // Re-read: another process may have settled it while this one waited for the locks.
    const nets = await this.store.listNetworks();
    const rec = nets.find((n) => n.id === net.id);
    if (rec) Object.assign(net, rec);
    if (rec && !rec.subnetPending) delete net.subnetPending;
    if (!rec || !unsettled(rec) || linkExists(bridge)) return;
    const taken = nets.filter((n) => n.id !== rec.id && n.ipam && !n.subnetPending).map((n) => ({ name: n.name, subnet: n.ipam!.subnet }));
    const uses = hostUses();
    if (bip) {
      const used = hostConflict(IPV4, parseCidr(bip.subnet, 'bip'), uses, bridge);
      if (used) {
        throw new BadStateError(`bip ${this.opts.defaultBridge.bip} of the configuration file is already used on the host: ${IPV4.describe(used)}`,
          'change bip, or leave it out to let Berth pick a free subnet');
      }
      rec.ipam = planPool(IPV4, bip, taken, { uses: [] });
    } else {
      rec.ipam = planPool(IPV4, {}, taken, {
        uses, ownDevice: bridge, candidate: parseCidr(rec.ipam!.subnet, 'subnet'), pool: () => poolSubnets(this.pools), poolName: poolName(this.pools),
      });
    }
    delete rec.subnetPending;
    await this.store.writeNetwork(rec);
    Object.assign(net, rec);
    delete net.subnetPending;
  }
}

/**
 * Before a bridge is made (at create, or again after a reboot): another interface may have taken its
 * subnet since (another engine's bridge, a VPN). Making it anyway would give the host two routes for one
 * subnet; the error names the route.
 */
function refuseHostOverlap(net: NetworkRecord): void {
  if (net.driver !== 'bridge') return;
  const [found] = hostOverlaps(net, hostUses(), net.ipam6 ? hostUses6() : []);
  if (found) {
    throw new BadStateError(`network ${net.name}: ${found}`,
      net.builtin ? 'remove that route or interface, or set "bip" in the configuration file to a free subnet' : 'remove that route or interface, or remove the network and create it with another subnet');
  }
}

/** Routes and addresses of other interfaces inside a network's subnets while its bridge exists (a VPN that came up later). */
export function hostCollisions(net: NetworkRecord, uses4: readonly HostUse<Ipv4Net>[], uses6: readonly HostUse<Ipv6Net>[]): string[] {
  const own = bridgeOf(net);
  if (!own || net.adopted || net.hostOverlapAllowed || !linkExists(own)) return [];
  return hostOverlaps(net, uses4, uses6);
}

function hostOverlaps(net: NetworkRecord, uses4: readonly HostUse<Ipv4Net>[], uses6: readonly HostUse<Ipv6Net>[]): string[] {
  const own = bridgeOf(net);
  const say = (subnet: string, what: string) => `subnet ${subnet} of network ${net.name} is already used on the host: ${what}`;
  const out: string[] = [];
  if (net.ipam) {
    const s = parseCidr(net.ipam.subnet, 'subnet');
    for (const u of uses4) if (u.dev !== own && IPV4.overlaps(u.net, s)) out.push(say(net.ipam.subnet, IPV4.describe(u)));
  }
  if (net.ipam6) {
    const s = IPV6.cidr(net.ipam6.subnet, 'subnet');
    for (const u of uses6) if (u.dev !== own && IPV6.overlaps(u.net, s)) out.push(say(net.ipam6.subnet, IPV6.describe(u)));
  }
  return out;
}

/** One IPv4 subnet, and one IPv6 subnet with --ipv6 (given or from the ULA pool); see subnets.ts. */
function planSubnets(req: NetworkCreateRequest, nets: readonly NetworkRecord[], view: Omit<HostView<unknown>, 'uses' | 'candidate'>): Pick<NetworkRecord, 'ipam' | 'ipam6'> {
  const want = splitByFamily(req);
  // A default bridge whose subnet is still a candidate gives way to a subnet the user names: it picks
  // another when its bridge is made.
  const taken = (pick: (n: NetworkRecord) => NetworkRecord['ipam'], given: boolean) => nets.flatMap((n) => (pick(n) && !(given && n.subnetPending) ? [{ name: n.name, subnet: pick(n)!.subnet }] : []));
  const ipam = planPool(IPV4, want.v4, taken((n) => n.ipam, !!want.v4.subnet), { ...view, uses: hostUses() } as HostView<Ipv4Net>);
  if (!req.ipv6) return { ipam };
  const { pool: _pool, poolName: _name, ...view6 } = view;
  return { ipam, ipam6: planPool(IPV6, want.v6, taken((n) => n.ipam6, !!want.v6.subnet), { ...view6, uses: hostUses6() } as HostView<Ipv6Net>) };
}

/** Whether the network's driver writes rules: a rewrite for one whose driver has none changes nothing. */
function hasRules(n: NetworkRecord): boolean {
  const d = driverFor(n.driver);
  return !!(d.firewall || d.firewall6);
}

/** The Linux bridge of a network whose endpoints are veths in a bridge (bridge, overlay, flannel), from its options. */
export function bridgeOf(n: NetworkRecord): string | undefined {
  const bridge = (n.driverOptions as { bridge?: unknown } | undefined)?.bridge;
  return typeof bridge === 'string' ? bridge : undefined;
}

/** A record a killed `network create` or `rm` left flagged. */
function unfinished(n: NetworkRecord): boolean {
  return !!(n.incomplete || n.removing);
}

/** The network and its members: containers with an endpoint on it, leaving out sandboxes being torn down. */
/** The rootless stand-in for the default bridge: its record's id, shown under slirp4netns's name and driver. */
function slirpView(bridge: NetworkRecord): NetworkRecord {
  const { ipam: _ipam, subnetPending: _pending, ...rest } = bridge;
  return { ...rest, name: SLIRP_NETWORK, driver: SLIRP_NETWORK, options: {}, driverOptions: {}, dns: false };
}

const SLIRP_NETWORK = 'slirp4netns';

function lookupNetworkOr(nets: readonly NetworkRecord[], ref: string): NetworkRecord | undefined {
  try {
    return lookupNetwork(nets, ref);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function detailsOf(net: NetworkRecord, sbs: readonly SandboxRecord[], host: { v4: HostUse<Ipv4Net>[]; v6: HostUse<Ipv6Net>[] }): NetworkDetails {
  const members: NetworkDetails['members'] = [];
  for (const sb of sbs) {
    // slirp4netns endpoints belong to no network record (rootless: the stand-in shows them).
    const endpoint = sb.endpoints.find((e) => (net.driver === SLIRP_NETWORK ? e.driver === SLIRP_NETWORK : e.networkId === net.id));
    if (endpoint && !sb.removing) members.push({ containerId: sb.containerId, name: sb.name, endpoint });
  }
  return { network: net, members, warnings: hostCollisions(net, host.v4, host.v6) };
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
