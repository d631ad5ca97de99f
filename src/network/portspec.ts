import { InvalidArgumentError } from '../errors.js';
import { parseIpv4 } from './cidr.js';
import { formatIpv6, parseIpv6 } from './cidr6.js';
import type { PortRequest, Protocol } from './types.js';

export type { PortRequest, Protocol };

const FIELD = 'publish';

type Role = 'hostPort' | 'containerPort';

// Messages open with Docker's (go-connections nat.ParsePortSpec) and then name the whole spec.
function parsePort(text: string, spec: string, role: Role): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(FIELD, `invalid ${role}: ${text || '""'} (in "${spec}")`, 'a port is a number from 1 to 65535, or a range such as 8000-8010');
  }
  return n;
}

function parseRange(text: string, spec: string, role: Role): { first: number; last: number } {
  const [a, b, extra] = text.split('-');
  if (extra !== undefined) throw new InvalidArgumentError(FIELD, `invalid ${role}: ${text} (in "${spec}")`, 'a range is FIRST-LAST, e.g. 8000-8010');
  const first = parsePort(a ?? '', spec, role);
  const last = b === undefined ? first : parsePort(b, spec, role);
  if (last < first) throw new InvalidArgumentError(FIELD, `invalid ${role}: range ${text} ends before it starts (in "${spec}")`);
  return { first, last };
}

function parseProtocol(text: string | undefined, spec: string): Protocol {
  const p = (text ?? 'tcp').toLowerCase();
  if (p !== 'tcp' && p !== 'udp') throw new InvalidArgumentError(FIELD, `invalid proto: ${text} (in "${spec}")`, 'tcp or udp; SCTP is not supported');
  return p;
}

/** Parses `-p [ip:][hostPort:]containerPort[/tcp|udp]`, each port possibly a range, as Docker does. */
export function parsePublish(spec: string): PortRequest[] {
  const [body = '', proto, extra] = spec.split('/');
  if (extra !== undefined) throw new InvalidArgumentError(FIELD, `"${spec}" has more than one /`);
  const protocol = parseProtocol(proto, spec);
  let parts: string[];
  let hostIp: string;
  if (body.startsWith('[')) {
    // Docker's form for IPv6: [ADDR]:hostPort:containerPort, hostPort possibly empty.
    const end = body.indexOf(']');
    const ip = end > 0 ? parseIpv6(body.slice(1, end)) : undefined;
    parts = body.slice(end + 2).split(':');
    if (end < 0 || body[end + 1] !== ':' || parts.length !== 2) throw new InvalidArgumentError(FIELD, `"${spec}" is not [IPv6]:hostPort:containerPort[/proto]`);
    if (ip === undefined) throw new InvalidArgumentError(FIELD, `invalid IP address: ${body.slice(1, end)} (in "${spec}")`, 'give an IPv6 address of this host in brackets, e.g. [::1]');
    hostIp = formatIpv6(ip);
    parts.unshift(hostIp);
  } else {
    parts = body.split(':');
    if (parts.length > 3) throw new InvalidArgumentError(FIELD, `"${spec}" is not [ip:][hostPort:]containerPort[/proto]`);
    hostIp = parts.length === 3 ? parts[0] || '0.0.0.0' : '0.0.0.0';
    if (parseIpv4(hostIp) === undefined) throw new InvalidArgumentError(FIELD, `invalid IP address: ${hostIp} (in "${spec}")`, 'give an IPv4 address of this host, e.g. 127.0.0.1, or an IPv6 one in brackets, e.g. [::1]');
  }
  const containerText = parts[parts.length - 1] ?? '';
  const hostText = parts.length >= 2 ? parts[parts.length - 2] ?? '' : '';

  const ctr = parseRange(containerText, spec, 'containerPort');
  const count = ctr.last - ctr.first + 1;
  const host = hostText === '' ? undefined : parseRange(hostText, spec, 'hostPort');
  const hostCount = host ? host.last - host.first + 1 : 0;
  if (host && count > 1 && hostCount !== count) {
    throw new InvalidArgumentError(FIELD, `invalid ranges specified for container and host Ports: ${containerText} and ${hostText} (in "${spec}")`, 'give ranges of the same size');
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
  const range = parseRange(port, key, 'containerPort');
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
  const auto = exposed.flatMap((key) => {
    try {
      return parseExposed(key);
    } catch (err) {
      throw new InvalidArgumentError(FIELD, `-P: the image exposes "${key}", which is not PORT[-PORT][/tcp|udp] with ports 1-65535`, 'publish the ports one by one with -p, or fix the image\'s ExposedPorts', { cause: err });
    }
  })
    .filter((e) => !taken.has(`${e.containerPort}/${e.protocol}`))
    .map((e) => ({ hostIp: '0.0.0.0', ...e }));
  return [...explicit, ...auto];
}
