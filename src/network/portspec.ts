import { InvalidArgumentError } from '../errors.js';
import { parseIpv4 } from './cidr.js';

export type Protocol = 'tcp' | 'udp';

/**
 * One container port to publish. The host port is fixed (`first === last`), a range to pick a free
 * one from, or absent (any free port of the ephemeral range, as `-P` and `-p 80`).
 */
export interface PortRequest {
  hostIp: string;
  hostPorts?: { first: number; last: number };
  containerPort: number;
  protocol: Protocol;
}

const FIELD = 'publish';

function parsePort(text: string, spec: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(FIELD, `"${spec}": ${text || 'an empty port'} is not a port number (1-65535)`);
  }
  return n;
}

function parseRange(text: string, spec: string): { first: number; last: number } {
  const [a, b, extra] = text.split('-');
  if (extra !== undefined) throw new InvalidArgumentError(FIELD, `"${spec}": bad port range ${text}`);
  const first = parsePort(a ?? '', spec);
  const last = b === undefined ? first : parsePort(b, spec);
  if (last < first) throw new InvalidArgumentError(FIELD, `"${spec}": range ${text} ends before it starts`);
  return { first, last };
}

function parseProtocol(text: string | undefined, spec: string): Protocol {
  const p = (text ?? 'tcp').toLowerCase();
  if (p !== 'tcp' && p !== 'udp') throw new InvalidArgumentError(FIELD, `"${spec}": protocol ${text} is not tcp or udp`, 'SCTP is not supported');
  return p;
}

/** Parses `-p [ip:][hostPort:]containerPort[/tcp|udp]`, each port possibly a range, as Docker does. */
export function parsePublish(spec: string): PortRequest[] {
  const [body = '', proto, extra] = spec.split('/');
  if (extra !== undefined) throw new InvalidArgumentError(FIELD, `"${spec}" has more than one /`);
  const protocol = parseProtocol(proto, spec);
  if (body.startsWith('[')) throw new InvalidArgumentError(FIELD, `"${spec}": IPv6 host addresses are not supported`);
  const parts = body.split(':');
  if (parts.length > 3) throw new InvalidArgumentError(FIELD, `"${spec}" is not [ip:][hostPort:]containerPort[/proto]`);
  const containerText = parts[parts.length - 1] ?? '';
  const hostText = parts.length >= 2 ? parts[parts.length - 2] ?? '' : '';
  const hostIp = parts.length === 3 ? parts[0] || '0.0.0.0' : '0.0.0.0';
  if (parseIpv4(hostIp) === undefined) throw new InvalidArgumentError(FIELD, `"${spec}": ${hostIp} is not an IPv4 address`);

  const ctr = parseRange(containerText, spec);
  const count = ctr.last - ctr.first + 1;
  const host = hostText === '' ? undefined : parseRange(hostText, spec);
  const hostCount = host ? host.last - host.first + 1 : 0;
  if (host && count > 1 && hostCount !== count) {
    throw new InvalidArgumentError(FIELD, `"${spec}": host range ${hostText} and container range ${containerText} differ in size`);
  }
  const out: PortRequest[] = [];
  for (let i = 0; i < count; i++) {
    const hostPorts = !host ? undefined : count > 1 ? { first: host.first + i, last: host.first + i } : host;
    out.push({ hostIp, containerPort: ctr.first + i, protocol, ...(hostPorts ? { hostPorts } : {}) });
  }
  return out;
}

/** Image ExposedPorts keys: '80/tcp', '53/udp', '8000-8002/tcp'. */
export function parseExposed(key: string): { containerPort: number; protocol: Protocol }[] {
  const [port = '', proto] = key.split('/');
  const range = parseRange(port, key);
  const protocol = parseProtocol(proto, key);
  const out: { containerPort: number; protocol: Protocol }[] = [];
  for (let p = range.first; p <= range.last; p++) out.push({ containerPort: p, protocol });
  return out;
}

/** `-p` list plus, with `-P`, every exposed port not already published, in Docker's order. */
export function portRequests(publish: readonly string[], publishAll: boolean, exposed: readonly string[]): PortRequest[] {
  const explicit = publish.flatMap(parsePublish);
  if (!publishAll) return explicit;
  const taken = new Set(explicit.map((r) => `${r.containerPort}/${r.protocol}`));
  const auto = exposed.flatMap(parseExposed)
    .filter((e) => !taken.has(`${e.containerPort}/${e.protocol}`))
    .map((e) => ({ hostIp: '0.0.0.0', ...e }));
  return [...explicit, ...auto];
}
