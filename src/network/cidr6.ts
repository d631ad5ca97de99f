import { InvalidArgumentError } from '../errors.js';

/** An IPv6 network: `base` is the network address as a 128-bit bigint. */
export interface Ipv6Net {
  readonly base: bigint;
  readonly prefix: number;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** Full and `::`-compressed forms; no zone ids and no embedded IPv4 (Berth never needs them). */
export function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (![...head, ...tail].every((g) => HEXTET.test(g))) return undefined;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function isIpv6Text(text: string): boolean {
  return text.includes(':');
}

/** RFC 5952: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIpv6(ip: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((ip >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best.at < 0) return hex(g);
  return `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}

export function maskOf6(prefix: number): bigint {
  return ((1n << BigInt(prefix)) - 1n) << BigInt(128 - prefix);
}

/**
 * Subnets from /48 (a site) to /120: a network gets at least 256 addresses, and never more than a
 * site. Host bits are refused, as for IPv4.
 */
export function parseCidr6(text: string, field: string): Ipv6Net {
  const [addr, bits, extra] = text.split('/');
  const prefix = Number(bits);
  const ip = addr === undefined ? undefined : parseIpv6(addr);
  if (ip === undefined || extra !== undefined || !/^\d{1,3}$/.test(bits ?? '')) {
    throw new InvalidArgumentError(field, `"${text}" is not an IPv6 CIDR such as fd00:1::/64`);
  }
  if (prefix < 48 || prefix > 120) throw new InvalidArgumentError(field, `${text}: the prefix must be from /48 to /120`, 'use a /64');
  const base = ip & maskOf6(prefix);
  if (base !== ip) throw new InvalidArgumentError(field, `"${text}" has host bits set`, `use ${formatCidr6({ base, prefix })}`);
  return { base, prefix };
}

export function formatCidr6(net: Ipv6Net): string {
  return `${formatIpv6(net.base)}/${net.prefix}`;
}

export function lastAddress6(net: Ipv6Net): bigint {
  return net.base + (1n << BigInt(128 - net.prefix)) - 1n;
}

export function contains6(net: Ipv6Net, ip: bigint): boolean {
  return ip >= net.base && ip <= lastAddress6(net);
}

export function overlaps6(a: Ipv6Net, b: Ipv6Net): boolean {
  return a.base <= lastAddress6(b) && b.base <= lastAddress6(a);
}

export function within6(inner: Ipv6Net, outer: Ipv6Net): boolean {
  return contains6(outer, inner.base) && contains6(outer, lastAddress6(inner));
}

/**
 * The addresses a container may get: the range (or subnet) without the subnet-router anycast address
 * (the network address, RFC 4291). IPv6 has no broadcast address.
 */
export function assignableRange6(subnet: Ipv6Net, range: Ipv6Net = subnet): { first: bigint; last: bigint } {
  const first = range.base > subnet.base ? range.base : subnet.base + 1n;
  const end = lastAddress6(range);
  const last = end < lastAddress6(subnet) ? end : lastAddress6(subnet);
  return { first, last };
}
