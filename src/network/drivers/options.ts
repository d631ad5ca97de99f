import { InvalidArgumentError } from '../../errors.js';
import type { EndpointRecord } from '../types.js';

/** Helpers drivers use to read `-o` options into typed records; unknown keys are refused. */
export function refuseUnknown(raw: Readonly<Record<string, string>>, known: readonly string[], driver: string): void {
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new InvalidArgumentError('opt', `the ${driver} driver has no option ${unknown.join(', ')}`, known.length ? `known options: ${known.join(', ')}` : `the ${driver} driver takes no options`);
  }
}

export function readBool(raw: Readonly<Record<string, string>>, key: string, dflt: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return dflt;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new InvalidArgumentError('opt', `${key}=${v} is not true or false`);
}

export function readInt(raw: Readonly<Record<string, string>>, key: string, dflt: number, min: number, max: number): number {
  const v = raw[key];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError('opt', `${key}=${v} is not a number from ${min} to ${max}`);
  return n;
}

/** Linux interface names: at most 15 bytes, no slash, colon or space. */
export function readIfName(value: string, key: string): string {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(value)) throw new InvalidArgumentError('opt', `${key}=${value} is not an interface name (1-15 of a-z A-Z 0-9 _ . -)`);
  return value;
}

/**
 * `ip` lines giving an interface already inside the netns its addresses, and the default routes of the
 * endpoint that carries them. IPv6 with nodad: usable at once, and IPAM already made it unique.
 */
export function endpointAddressLines(ep: EndpointRecord): string[] {
  const dev = ep.interface;
  return [
    `addr add ${ep.ipv4}/${ep.prefixLength} dev ${dev}`,
    ...(ep.ipv6 ? [`addr add ${ep.ipv6}/${ep.prefixLength6} dev ${dev} nodad`] : []),
    `link set ${dev} up`,
    ...(ep.gateway && ep.defaultRoute ? [`route add default via ${ep.gateway} dev ${dev}`] : []),
    // `::/0` names the family: ip -batch lines take no -6.
    ...(ep.gateway6 && ep.defaultRoute6 ? [`route add ::/0 via ${ep.gateway6} dev ${dev}`] : []),
  ];
}
