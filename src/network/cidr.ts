import { InvalidArgumentError } from '../errors.js';

/** An IPv4 network: `base` is the network address as an unsigned 32-bit number. */
export interface Ipv4Net {
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function requireIpv4(text: string, field: string): number {
  const ip = parseIpv4(text);
  if (ip === undefined) throw new InvalidArgumentError(field, `"${text}" is not an IPv4 address`);
  return ip;
}

export function formatIpv4(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Docker refuses host bits in a subnet ("it should be 10.1.0.0/16"); so do we, rather than guess. */
export function parseCidr(text: string, field: string): Ipv4Net {
  const [addr, bits, extra] = text.split('/');
  const prefix = Number(bits);
  const ip = addr === undefined ? undefined : parseIpv4(addr);
  if (ip === undefined || extra !== undefined || !/^\d{1,2}$/.test(bits ?? '') || prefix > 32) {
    throw new InvalidArgumentError(field, `"${text}" is not an IPv4 CIDR such as 10.1.0.0/16`);
  }
  const base = (ip & maskOf(prefix)) >>> 0;
  if (base !== ip) {
    throw new InvalidArgumentError(field, `"${text}" has host bits set`, `use ${formatCidr({ base, prefix })}`);
  }
  return { base, prefix };
}

export function formatCidr(net: Ipv4Net): string {
  return `${formatIpv4(net.base)}/${net.prefix}`;
}

export function netSize(net: Ipv4Net): number {
  return 2 ** (32 - net.prefix);
}

export function lastAddress(net: Ipv4Net): number {
  return net.base + netSize(net) - 1;
}

export function contains(net: Ipv4Net, ip: number): boolean {
  return ip >= net.base && ip <= lastAddress(net);
}

export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.base <= lastAddress(b) && b.base <= lastAddress(a);
}

/** Is `inner` wholly inside `outer`? */
export function within(inner: Ipv4Net, outer: Ipv4Net): boolean {
  return contains(outer, inner.base) && contains(outer, lastAddress(inner));
}

/**
 * The addresses a container may get: the range (or subnet) without the network address, the
 * broadcast address and the gateway. /31 and /32 have no network/broadcast (RFC 3021).
 */
export function assignableRange(subnet: Ipv4Net, range: Ipv4Net = subnet): { first: number; last: number } {
  const hasEdges = subnet.prefix < 31;
  const first = Math.max(range.base, subnet.base + (hasEdges ? 1 : 0));
  const last = Math.min(lastAddress(range), lastAddress(subnet) - (hasEdges ? 1 : 0));
  return { first, last };
}
