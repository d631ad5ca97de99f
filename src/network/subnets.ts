import type { NetworkCreateRequest } from '../options.js';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { assignableRange, contains, formatCidr, formatIpv4, overlaps, parseCidr, parseIpv4, within } from './cidr.js';
import { assignableRange6, contains6, formatCidr6, formatIpv6, isIpv6Text, overlaps6, parseCidr6, parseIpv6, within6 } from './cidr6.js';
import type { NetworkRecord } from './types.js';

type Pool = NonNullable<NetworkRecord['ipam']>;

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
  /** automatic subnets, in order (a generator: the IPv6 pool has 65536) */
  pool(): Iterable<N>;
  readonly poolName: string;
}

type V4 = ReturnType<typeof parseCidr>;
type V6 = ReturnType<typeof parseCidr6>;

// Automatic subnets, as podman: 10.89.N.0/24.
const V4_POOL = parseIpv4('10.89.0.0')!;
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
  *pool() { for (let i = 0; i < 256; i++) yield { base: V4_POOL + i * 256, prefix: 24 }; },
  poolName: '10.89.0.0/16',
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
};

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

/**
 * The subnet, gateway and range of one family: the given subnet if it overlaps no other network, or
 * the first free one of the family's pool (also avoiding `busy`, the host's routes). Pure, for tests.
 */
export function planPool<N>(f: Family<N>, want: Wanted, taken: readonly { name: string; subnet: string }[], busy: readonly N[]): Pool {
  const others = taken.map((t) => ({ name: t.name, net: f.cidr(t.subnet, 'subnet') }));
  let subnet: N;
  if (want.subnet) {
    subnet = f.cidr(want.subnet, 'subnet');
    const other = others.find((t) => f.overlaps(t.net, subnet));
    if (other) throw new InvalidArgumentError('subnet', `${want.subnet} overlaps network ${other.name} (${f.format(other.net)})`, 'pick a subnet no other network uses');
  } else {
    if (want.gateway || want.ipRange) throw new InvalidArgumentError('gateway', `an ${f.name} gateway or ip-range needs an ${f.name} --subnet`);
    const avoid = [...others.map((o) => o.net), ...busy];
    let free: N | undefined;
    for (const cand of f.pool()) if (!avoid.some((b) => f.overlaps(b, cand))) { free = cand; break; }
    if (!free) throw new BadStateError(`no free ${f.name} subnet left in ${f.poolName}`, 'give one with --subnet');
    subnet = free;
  }
  const gateway = want.gateway === undefined ? f.firstHost(subnet) : f.hostAddress(subnet, want.gateway);
  if (gateway === undefined) throw new InvalidArgumentError('gateway', `${want.gateway} is not a host address inside ${f.format(subnet)}`);
  if (want.ipRange && !f.within(f.cidr(want.ipRange, 'ip-range'), subnet)) throw new InvalidArgumentError('ip-range', `${want.ipRange} is not inside ${f.format(subnet)}`);
  return { subnet: f.format(subnet), gateway, ...(want.ipRange ? { ipRange: want.ipRange } : {}) };
}
