import type { NetworkCreateRequest } from '../options.js';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { assignableRange, contains, formatCidr, formatIpv4, overlaps, parseCidr, parseIpv4, within } from './cidr.js';
import { assignableRange6, contains6, formatCidr6, formatIpv6, isIpv6Text, overlaps6, parseCidr6, parseIpv6, within6 } from './cidr6.js';
import type { HostUse } from './hostnet.js';
import type { NetworkRecord } from './types.js';

type Pool = NonNullable<NetworkRecord['ipam']>;

/** One of Docker's `default-address-pools`: automatic subnets of `size` bits cut from `base`, in order. */
export interface PoolSpec { base: string; size: number }

/**
 * Berth's automatic IPv4 subnets: 2048 /24s, clear of Podman's first defaults (10.88.0.0/16, 10.89.0.0/16)
 * and Docker's (172.17.0.0/16 and its 172.x/192.168.x pools), and of the 10.96.0.0/12 Kubernetes serves from.
 */
export const DEFAULT_POOLS: readonly PoolSpec[] = [{ base: '10.160.0.0/13', size: 24 }];

/** The default root's default bridge tries this first (Podman's 10.88.0.0/16 until Berth 0.x; kept where recorded). */
export const DEFAULT_BRIDGE_SUBNET = '10.159.0.0/16';
/** One address family's subnet arithmetic, so both families are planned by the same code. */
interface Family<N> {
  readonly name: 'IPv4' | 'IPv6';
  cidr(text: string, field: string): N;
  format(net: N): string;
  overlaps(a: N, b: N): boolean;
  within(inner: N, outer: N): boolean;
  /** the canonical text of `ip` if it is a host address of `subnet` */
  hostAddress(subnet: N, ip: string): string | undefined;
  firstHost(subnet: N): string;
  /** the built-in automatic subnets, in order (a generator: the IPv6 pool has 65536) */
  pool(): Iterable<N>;
  readonly poolName: string;
  /** how a route or address of the host is shown in an error */
  describe(use: HostUse<N>): string;
}

type V4 = ReturnType<typeof parseCidr>;
type V6 = ReturnType<typeof parseCidr6>;

// Docker's default IPv6 pool is ULA too; ours is fd00:b5e7::/48 in /64s (b5e7 ≈ "Berth").
const V6_POOL = parseIpv6('fd00:b5e7::')!;

export const IPV4: Family<V4> = {
  name: 'IPv4',
  cidr: parseCidr,
  format: formatCidr,
  overlaps,
  within,
  hostAddress(subnet, text) {
    const ip = parseIpv4(text);
    const r = assignableRange(subnet);
    return ip !== undefined && contains(subnet, ip) && ip >= r.first && ip <= r.last ? formatIpv4(ip) : undefined;
  },
  firstHost: (subnet) => formatIpv4(assignableRange(subnet).first),
  pool: () => poolSubnets(DEFAULT_POOLS),
  poolName: poolName(DEFAULT_POOLS),
  describe: (u) => (u.kind === 'route' ? `route ${formatCidr(u.net)} dev ${u.dev}` : `address ${formatIpv4(u.net.base)} on ${u.dev}`),
};

export const IPV6: Family<V6> = {
  name: 'IPv6',
  cidr: parseCidr6,
  format: formatCidr6,
  overlaps: overlaps6,
  within: within6,
  hostAddress(subnet, text) {
    const ip = parseIpv6(text);
    const r = assignableRange6(subnet);
    return ip !== undefined && contains6(subnet, ip) && ip >= r.first && ip <= r.last ? formatIpv6(ip) : undefined;
  },
  firstHost: (subnet) => formatIpv6(assignableRange6(subnet).first),
  *pool() { for (let i = 0n; i < 65536n; i++) yield { base: V6_POOL + (i << 64n), prefix: 64 }; },
  poolName: 'fd00:b5e7::/48',
  describe: (u) => (u.kind === 'route' ? `route ${formatCidr6(u.net)} dev ${u.dev}` : `address ${formatIpv6(u.net.base)} on ${u.dev}`),
};

/**
 * Checks `default-address-pools` (InvalidArgumentError naming the entry): IPv4 bases without host bits,
 * sizes from the base's prefix to /30 (a gateway and at least one container).
 */
export function parsePools(specs: readonly PoolSpec[], field = 'default-address-pools'): V4[] {
  if (!specs.length) throw new InvalidArgumentError(field, 'the list is empty', 'leave the key out to use the built-in pool, or give at least one {"base": "10.160.0.0/13", "size": 24}');
  return specs.map((p) => {
    if (isIpv6Text(p.base)) throw new InvalidArgumentError(field, `${p.base}: IPv6 pools are not supported yet`, `IPv6 subnets come from ${IPV6.poolName}; give IPv4 bases only`);
    const base = parseCidr(p.base, field);
    if (!Number.isInteger(p.size) || p.size < base.prefix || p.size > 30) {
      throw new InvalidArgumentError(field, `${p.base} size ${p.size}: the size must be from ${base.prefix} (the base's prefix) to 30`);
    }
    return base;
  });
}

/** Every automatic subnet of the pools, in order. */
export function* poolSubnets(specs: readonly PoolSpec[]): Generator<V4> {
  for (const [i, base] of parsePools(specs).entries()) {
    const size = specs[i]!.size;
    const step = 2 ** (32 - size);
    for (let k = 0; k < 2 ** (size - base.prefix); k++) yield { base: base.base + k * step, prefix: size };
  }
}

export function poolName(specs: readonly PoolSpec[]): string {
  return specs.map((p) => `${p.base} by /${p.size}`).join(', ');
}

/** The first route or address of the host inside `subnet`, except those of the network's own device. */
export function hostConflict<N>(f: Family<N>, subnet: N, uses: readonly HostUse<N>[], ownDevice?: string): HostUse<N> | undefined {
  return uses.find((u) => u.dev !== ownDevice && f.overlaps(u.net, subnet));
}

/** What the user asked for one family: at most one subnet, gateway and range. */
interface Wanted { subnet?: string; gateway?: string; ipRange?: string }

/**
 * Splits `--subnet/--gateway/--ip-range` by family: a network has at most one IPv4 and one IPv6 subnet
 * (Docker's dual stack), and IPv6 ones only with `--ipv6`.
 */
export function splitByFamily(req: NetworkCreateRequest): { v4: Wanted; v6: Wanted } {
  const pick = (list: readonly string[] | undefined, field: string, v6: boolean) => {
    const hits = (list ?? []).filter((s) => isIpv6Text(s) === v6);
    if (hits.length > 1) throw new InvalidArgumentError(field, `${hits.join(', ')}: a network has at most one ${field} per address family`);
    if (v6 && hits[0] && !req.ipv6) throw new InvalidArgumentError(field, `${hits[0]} is IPv6, but the network is not`, 'add --ipv6 to make a dual-stack network');
    return hits[0];
  };
  const wanted = (v6: boolean): Wanted => {
    const w = { subnet: pick(req.subnets, 'subnet', v6), gateway: pick(req.gateways, 'gateway', v6), ipRange: pick(req.ipRanges, 'ip-range', v6) };
    return Object.fromEntries(Object.entries(w).filter(([, v]) => v !== undefined));
  };
  return { v4: wanted(false), v6: wanted(true) };
}

/** What the host holds, and how a plan treats it. */
export interface HostView<N> {
  /** the host's routes and addresses */
  uses: readonly HostUse<N>[];
  /** the network's own device (an adopted bridge): its routes are the network's, not a conflict */
  ownDevice?: string;
  /** whether a given subnet is refused when it overlaps the host (bridges: yes; macvlan shares its LAN) */
  refuseOverlap?: boolean;
  /** the user allows a given subnet to overlap the host (`--allow-host-overlap`) */
  allowOverlap?: boolean;
  /** automatic subnets, in order, and how an error names them (default: the family's built-in pool) */
  pool?: () => Iterable<N>;
  poolName?: string;
  /** tried before the pool: the default bridge's fixed or derived subnet */
  candidate?: N;
}

/**
 * The subnet, gateway and range of one family: the given subnet if it overlaps no other network (nor,
 * when the view says so, the host), or the candidate, or the first free subnet of the pool (avoiding
 * the host's routes and addresses). Pure, for tests.
 */
export function planPool<N extends object>(f: Family<N>, want: Wanted, taken: readonly { name: string; subnet: string }[], host: HostView<N>): Pool {
  const others = taken.map((t) => ({ name: t.name, net: f.cidr(t.subnet, 'subnet') }));
  let subnet: N;
  if (want.subnet) {
    subnet = f.cidr(want.subnet, 'subnet');
    const other = others.find((t) => f.overlaps(t.net, subnet));
    if (other) throw new InvalidArgumentError('subnet', `${want.subnet} overlaps network ${other.name} (${f.format(other.net)})`, 'pick a subnet no other network uses');
    const used = host.refuseOverlap && !host.allowOverlap ? hostConflict(f, subnet, host.uses, host.ownDevice) : undefined;
    if (used) {
      throw new InvalidArgumentError('subnet', `${want.subnet} is already used on the host: ${f.describe(used)}`,
        'pick another subnet, or add --allow-host-overlap if the overlap is intended');
    }
  } else {
    if (want.gateway || want.ipRange) throw new InvalidArgumentError('gateway', `an ${f.name} gateway or ip-range needs an ${f.name} --subnet`);
    const free = (cand: N) => !others.some((o) => f.overlaps(o.net, cand)) && !hostConflict(f, cand, host.uses, host.ownDevice);
    let found: N | undefined = host.candidate !== undefined && free(host.candidate) ? host.candidate : undefined;
    if (found === undefined) for (const cand of (host.pool ?? f.pool)()) if (free(cand)) { found = cand; break; }
    if (found === undefined) {
      throw new BadStateError(`no free ${f.name} subnet left in the address pools (${host.poolName ?? f.poolName}): other networks and the host's routes hold them all`,
        f.name === 'IPv4' ? 'add a pool to "default-address-pools" in the configuration file, remove unused networks, or give --subnet' : 'give --subnet');
    }
    subnet = found;
  }
  const gateway = want.gateway === undefined ? f.firstHost(subnet) : f.hostAddress(subnet, want.gateway);
  if (gateway === undefined) throw new InvalidArgumentError('gateway', `${want.gateway} is not a host address inside ${f.format(subnet)}`);
  if (want.ipRange && !f.within(f.cidr(want.ipRange, 'ip-range'), subnet)) throw new InvalidArgumentError('ip-range', `${want.ipRange} is not inside ${f.format(subnet)}`);
  return { subnet: f.format(subnet), gateway, ...(want.ipRange ? { ipRange: want.ipRange } : {}) };
}
