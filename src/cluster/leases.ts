/**
 * Flannel's subnet leases, in flannel's own etcd layout (so its state reads as flannel's does), under
 * `<prefix>` = `/berth/flannel/<network-id>` (keys.flannel):
 *
 *   <prefix>/config                 {"Network":"10.70.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1}}
 *   <prefix>/subnets/10.70.3.0-24   {"PublicIP":"192.0.2.5","BackendType":"vxlan","BackendData":{"VtepMAC":"..","VNI":1}}
 *
 * A host leases one subnet of `SubnetLen` from `Network` the first time it needs one and keeps the lease
 * alive; when it dies the lease expires and etcd deletes the subnet's key, so the subnet returns to the
 * pool and the other hosts (watching `<prefix>/subnets/`) drop their routes to it. As flannel does, the
 * first subnet of the network (which holds its network address) is not handed out unless SubnetMin says so.
 */
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { formatCidr, formatIpv4, lastAddress, netSize, parseCidr, parseIpv4, within, type Ipv4Net } from '../network/cidr.js';
import type { ClusterStore, LeaseId } from './store.js';

export interface FlannelConfig {
  Network: string;
  SubnetLen?: number;
  SubnetMin?: string;
  SubnetMax?: string;
  Backend?: { Type: string; VNI?: number; [k: string]: unknown };
}

/** What a host publishes about itself with its subnet (flannel's LeaseAttrs). */
export interface SubnetAttrs {
  PublicIP: string;
  BackendType: string;
  BackendData?: Record<string, unknown>;
}

export interface SubnetLease {
  /** "10.70.3.0/24" */
  subnet: string;
  attrs: SubnetAttrs;
  /** the etcd lease the key lives under */
  lease?: LeaseId;
  modRevision: number;
}

const configKey = (prefix: string) => `${prefix}/config`;
const subnetsPrefix = (prefix: string) => `${prefix}/subnets/`;
/** flannel writes 10.70.3.0/24 as "10.70.3.0-24" (a key segment cannot hold "/") */
const subnetKey = (prefix: string, net: Ipv4Net) => `${subnetsPrefix(prefix)}${formatIpv4(net.base)}-${net.prefix}`;

function parseSubnetKey(key: string): Ipv4Net | undefined {
  const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d{1,2})$/.exec(key);
  if (!m) return undefined;
  try {
    return parseCidr(`${m[1]}/${m[2]}`, 'subnet key');
  } catch {
    return undefined;
  }
}

/** Checks a flannel network config and fills in flannel's defaults (SubnetLen, SubnetMin, SubnetMax). */
export function checkFlannelConfig(cfg: FlannelConfig): { network: Ipv4Net; subnetLen: number; min: number; max: number } {
  if (!cfg || typeof cfg.Network !== 'string') throw new InvalidArgumentError('flannel config', '"Network" is missing', 'give {"Network": "10.70.0.0/16", "SubnetLen": 24}');
  const network = parseCidr(cfg.Network, 'flannel Network');
  // flannel's default: /24, or two bits longer than a network smaller than a /22.
  const subnetLen = cfg.SubnetLen ?? (network.prefix <= 22 ? 24 : network.prefix + 2);
  if (!Number.isInteger(subnetLen) || subnetLen <= network.prefix || subnetLen > 30) {
    throw new InvalidArgumentError('subnet-len', `${subnetLen} must be longer than the network's /${network.prefix} and at most 30`, 'e.g. --opt subnet-len=24 for a /16');
  }
  const size = 2 ** (32 - subnetLen);
  const min = cfg.SubnetMin ? parseCidr(`${cfg.SubnetMin}/${subnetLen}`, 'SubnetMin').base : network.base + size;
  const max = cfg.SubnetMax ? parseCidr(`${cfg.SubnetMax}/${subnetLen}`, 'SubnetMax').base : lastAddress(network) + 1 - size;
  if (min < network.base || max > lastAddress(network) || min > max) {
    throw new InvalidArgumentError('flannel config', `SubnetMin..SubnetMax (${formatIpv4(min)}..${formatIpv4(max)}) is not inside ${cfg.Network}`);
  }
  return { network, subnetLen, min, max };
}

/** Writes the network's config if none is there; returns the one in the store (which wins a race). */
export async function ensureFlannelConfig(store: ClusterStore, prefix: string, cfg: FlannelConfig): Promise<FlannelConfig> {
  checkFlannelConfig(cfg);
  if (await store.create(configKey(prefix), JSON.stringify(cfg))) return cfg;
  return (await readFlannelConfig(store, prefix))!;
}

export async function readFlannelConfig(store: ClusterStore, prefix: string): Promise<FlannelConfig | undefined> {
  const kv = await store.get(configKey(prefix));
  if (!kv) return undefined;
  const cfg = parseJson(kv.value, configKey(prefix)) as FlannelConfig;
  checkFlannelConfig(cfg);
  return cfg;
}

/** Every subnet leased now, by any host. */
export async function listSubnets(store: ClusterStore, prefix: string): Promise<SubnetLease[]> {
  const { kvs } = await store.list(subnetsPrefix(prefix));
  const out: SubnetLease[] = [];
  for (const kv of kvs) {
    const net = parseSubnetKey(kv.key);
    if (!net) continue;
    out.push({ subnet: formatCidr(net), attrs: parseJson(kv.value, kv.key) as SubnetAttrs, lease: kv.lease, modRevision: kv.modRevision });
  }
  return out;
}

/**
 * The subnet of the host whose address is `hostAddr`: the one a lease already names it in (a host that
 * restarted keeps its subnet, as flannel's), else a free one taken atomically. Either way the key is
 * (re)written with `data` under a new etcd lease of `ttlSeconds`, which the caller keeps alive (`renewSubnet`).
 * Given `{ lease }` instead, the key goes under that lease (a Berth host's own: the subnet then lives and
 * dies with the host's registration) and the result names no lease, so `releaseSubnet` leaves it alone;
 * `preferred` is tried first among the free subnets (the one this host's bridge still holds).
 */
export async function acquireSubnet(
  store: ClusterStore, prefix: string, hostAddr: string, data: Omit<SubnetAttrs, 'PublicIP'>, ttl: number | { lease: LeaseId; preferred?: string },
): Promise<SubnetLease> {
  if (parseIpv4(hostAddr) === undefined) throw new InvalidArgumentError('host address', `"${hostAddr}" is not an IPv4 address`);
  const cfg = await readFlannelConfig(store, prefix);
  if (!cfg) throw new BadStateError(`the flannel network at ${prefix} has no config in the cluster store`, 'create the network again (berth network create -d flannel ...)');
  const { network, subnetLen, min, max } = checkFlannelConfig(cfg);
  const attrs: SubnetAttrs = { PublicIP: hostAddr, ...data };
  const value = JSON.stringify(attrs);
  const shared = typeof ttl === 'number' ? undefined : ttl;
  const lease = shared ? shared.lease : await store.grantLease(ttl as number);
  const named = (l: Omit<SubnetLease, 'lease'>): SubnetLease => (shared ? l : { ...l, lease });
  try {
    // A few rounds: each loses only to another host that took the same subnet in between.
    for (let round = 0; round < 16; round++) {
      const current = await listSubnets(store, prefix);
      const mine = current.find((s) => s.attrs.PublicIP === hostAddr && within(parseCidr(s.subnet, 'subnet'), network));
      if (mine) {
        if (await store.compareAndSwap(subnetKey(prefix, parseCidr(mine.subnet, 'subnet')), mine.modRevision, value, { lease })) {
          return named({ subnet: mine.subnet, attrs, modRevision: (await store.get(subnetKey(prefix, parseCidr(mine.subnet, 'subnet'))))?.modRevision ?? 0 });
        }
        continue;
      }
      const used = new Set(current.map((s) => s.subnet));
      const free: Ipv4Net[] = [];
      const size = 2 ** (32 - subnetLen);
      for (let base = min; base <= max; base += size) {
        const net = { base, prefix: subnetLen };
        if (!used.has(formatCidr(net))) free.push(net);
      }
      if (!free.length) {
        throw new BadStateError(`every /${subnetLen} subnet of ${cfg.Network} is leased (${used.size} hosts)`, 'remove hosts that left the cluster (their leases expire), or use a larger network or a longer subnet-len');
      }
      // A random free subnet, as flannel picks: hosts starting together rarely want the same one.
      const net = free.find((f) => formatCidr(f) === shared?.preferred) ?? free[Math.floor(Math.random() * free.length)]!;
      if (await store.create(subnetKey(prefix, net), value, { lease })) {
        return named({ subnet: formatCidr(net), attrs, modRevision: (await store.get(subnetKey(prefix, net)))?.modRevision ?? 0 });
      }
    }
    throw new BadStateError(`could not lease a subnet of ${cfg.Network}: other hosts kept taking the free ones`, 'try again');
  } catch (err) {
    if (!shared) await store.revokeLease(lease).catch(() => undefined);
    throw err;
  }
}

/** Keeps the subnet's lease alive; 0 means it is gone (expired): acquire again. */
export function renewSubnet(store: ClusterStore, lease: SubnetLease): Promise<number> {
  if (!lease.lease) return Promise.resolve(0);
  return store.keepAliveOnce(lease.lease);
}

/** Gives the subnet back (the host leaves the network): its key goes with its lease. */
export async function releaseSubnet(store: ClusterStore, prefix: string, lease: SubnetLease): Promise<void> {
  const net = parseCidr(lease.subnet, 'subnet');
  // Only if it is still ours: another host may have taken it after our lease expired.
  const kv = await store.get(subnetKey(prefix, net));
  if (kv && (parseJson(kv.value, kv.key) as SubnetAttrs).PublicIP === lease.attrs.PublicIP) await store.delete(kv.key, { ifModRevision: kv.modRevision });
  if (lease.lease) await store.revokeLease(lease.lease).catch((err: unknown) => {
    if (!(err as { alreadyGone?: boolean }).alreadyGone) throw err;
  });
}

function parseJson(text: string, key: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadStateError(`the cluster store's ${key} is not JSON`, 'fix or delete the key (etcdctl get/del)');
  }
}

/** The number of subnets a config can hand out (for messages and inspect). */
export function subnetCount(cfg: FlannelConfig): number {
  const { min, max, subnetLen } = checkFlannelConfig(cfg);
  return Math.floor((max - min) / netSize({ base: 0, prefix: subnetLen })) + 1;
}
