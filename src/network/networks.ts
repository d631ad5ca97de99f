import { promises as fsp } from 'node:fs';
import { parsePruneFilter, prunable } from '../util/prune-filter.js';
import path from 'node:path';
import type { NetworkCreateRequest } from '../options.js';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError, runTeardown } from '../errors.js';
import { NAME_PATTERN, newNetworkId } from '../ids.js';
import { failpoint } from '../util/failpoint.js';
import { isStaleLock } from '../util/lock.js';
import { assignableRange, formatIpv4, parseCidr } from './cidr.js';
import { NameServer } from './dns.js';
import { driverFor } from './drivers/index.js';
import type { FirewallSync } from './firewall-sync.js';
import { hostRoutes, hostRoutes6 } from './hostnet.js';
import { withFileLock } from './mutex.js';
import { lookupNetwork } from './plan.js';
import type { NetStore } from './store.js';
import { IPV4, IPV6, planPool, splitByFamily } from './subnets.js';
import type { DriverContext, NetworkDetails, NetworkRecord, SandboxRecord } from './types.js';

/**
 * Networks (CNM's network, the driver's createNetwork/deleteNetwork): records under the networks lock,
 * the built-ins made on first use, and the repair of a `create` or `rm` a kill left flagged.
 */
export interface Networks {
  create(req: NetworkCreateRequest): Promise<{ id: string }>;
  list(opts?: { filters?: string[] }): Promise<NetworkDetails[]>;
  inspect(ref: string): Promise<NetworkDetails>;
  remove(ref: string): Promise<void>;
  prune(opts?: { filters?: string[] }): Promise<{ deleted: string[] }>;
  /** Every record, built-ins made and unfinished creates/removes settled first. */
  all(): Promise<NetworkRecord[]>;
  /** By name, id or unique id prefix; NotFoundError otherwise. */
  find(ref: string): Promise<NetworkRecord>;
  /** Makes the network's host objects (bridge, VLAN link) and its firewall rules, once; NotFoundError once it is going. */
  ensure(net: NetworkRecord): Promise<void>;
  /** Settles what a killed create or rm left, if one of `lockFiles` (network locks) has a dead holder. */
  repair(lockFiles: readonly string[]): Promise<void>;
}

export interface NetworksOptions {
  defaultBridge: { subnet: string; mtu?: number };
  ctx: DriverContext;
}

export function openNetworks(store: NetStore, firewall: FirewallSync, opts: NetworksOptions): Networks {
  parseCidr(opts.defaultBridge.subnet, 'default bridge subnet');
  return new NetworkStore(store, firewall, opts);
}

const BUILTIN = ['bridge', 'host', 'none'] as const;

class NetworkStore implements Networks {
  constructor(private readonly store: NetStore, private readonly firewall: FirewallSync, private readonly opts: NetworksOptions) {}

  /**
   * Every network, after making the built-in ones on first use (their records give them stable ids, as
   * Docker's) and finishing what a killed `network create` or `rm` left flagged.
   */
  async all(): Promise<NetworkRecord[]> {
    const nets = await this.store.listNetworks();
    if (BUILTIN.every((n) => nets.some((r) => r.name === n && r.builtin)) && !nets.some(unfinished)) return nets;
    return withFileLock(this.store.locks.networks(), () => this.ensureBuiltinsLocked());
  }

  async repair(lockFiles: readonly string[]): Promise<void> {
    const ours = (f: string) => f === this.store.locks.networks() || path.basename(f).startsWith('net-');
    const stale: string[] = [];
    for (const f of lockFiles.filter(ours)) if (await isStaleLock(f)) stale.push(f);
    if (!stale.length) return;
    // A killed `network create` or `rm`: listing the networks finishes or undoes it (under the networks lock).
    await this.all();
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
        ...(name === 'bridge' ? { ipam: { subnet, gateway: formatIpv4(assignableRange(parseCidr(subnet, 'subnet')).first) } } : {}),
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
      driverOptions: d.parseOptions(options, { id, name, internal }, this.opts.ctx),
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
      const pools = driver.needsSubnet ? planSubnets(req, nets) : {};
      const rec = this.newRecord(req.name, driver.kind, {
        internal: req.internal ?? false, ipv6: req.ipv6 ?? false, options: { ...req.options }, labels: { ...req.labels }, ...pools,
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
        await this.firewall.apply();
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
    await this.firewall.apply();
  }

  async find(ref: string): Promise<NetworkRecord> {
    return lookupNetwork(await this.all(), ref);
  }

  async list(opts: { filters?: string[] } = {}): Promise<NetworkDetails[]> {
    const [nets, sbs] = await Promise.all([this.all(), this.store.listSandboxes()]);
    const filters = (opts.filters ?? []).map(parseFilter);
    return nets.filter((n) => filters.every((f) => matches(n, f))).map((n) => detailsOf(n, sbs));
  }

  async inspect(ref: string): Promise<NetworkDetails> {
    const net = await this.find(ref);
    return detailsOf(net, await this.store.listSandboxes());
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
    const unused = nets.filter((n) => !n.builtin && !sbs.some((s) => s.endpoints.some((e) => e.networkId === n.id)));
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
    const driver = driverFor(net.driver);
    const made = await withFileLock(this.store.locks.network(net.id), async () => {
      if (!(await this.store.listNetworks()).some((n) => n.id === net.id && !n.removing)) throw new NotFoundError('network', net.name);
      const before = bridgeOf(net);
      const existed = before ? (await fsp.stat(`/sys/class/net/${before}`).then(() => true, () => false)) : true;
      await driver.createNetwork(net);
      return !existed;
    });
    // The network's rules and our jumps go in with the bridge (after a reboot too: it takes the bridge).
    // Not re-checked per attach: a check is two processes and a rewrite deletes rules (see renderAppend);
    // after a firewall flush, `network reload` puts them back, as Docker needs a daemon restart.
    if (made) await this.firewall.apply();
  }
}

/** One IPv4 subnet, and one IPv6 subnet with --ipv6 (given or from the ULA pool); see subnets.ts. */
function planSubnets(req: NetworkCreateRequest, nets: readonly NetworkRecord[]): Pick<NetworkRecord, 'ipam' | 'ipam6'> {
  const want = splitByFamily(req);
  const taken = (pick: (n: NetworkRecord) => NetworkRecord['ipam']) => nets.flatMap((n) => (pick(n) ? [{ name: n.name, subnet: pick(n)!.subnet }] : []));
  const ipam = planPool(IPV4, want.v4, taken((n) => n.ipam), hostRoutes());
  if (!req.ipv6) return { ipam };
  return { ipam, ipam6: planPool(IPV6, want.v6, taken((n) => n.ipam6), hostRoutes6()) };
}

function bridgeOf(n: NetworkRecord): string | undefined {
  return n.driver === 'bridge' ? (n.driverOptions as { bridge: string }).bridge : undefined;
}

/** A record a killed `network create` or `rm` left flagged. */
function unfinished(n: NetworkRecord): boolean {
  return !!(n.incomplete || n.removing);
}

/** The network and its members: containers with an endpoint on it, leaving out sandboxes being torn down. */
function detailsOf(net: NetworkRecord, sbs: readonly SandboxRecord[]): NetworkDetails {
  const members: NetworkDetails['members'] = [];
  for (const sb of sbs) {
    const endpoint = sb.endpoints.find((e) => e.networkId === net.id);
    if (endpoint && !sb.removing) members.push({ containerId: sb.containerId, name: sb.name, endpoint });
  }
  return { network: net, members };
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
