/**
 * The cluster settings as the user gives them (`--cluster-store`, `--cluster-advertise`, their environment
 * variables, the config file's `cluster-store`, `cluster-advertise`, `cluster-store-opts`), parsed strictly
 * into typed records once, at the edge. Pure: nothing here touches the network or the host.
 */
import { InvalidArgumentError } from '../errors.js';
import { parseIpv4 } from '../network/cidr.js';

export interface StoreEndpoint {
  host: string;
  port: number;
  /** `http://HOST:PORT` or `https://HOST:PORT` (an IPv6 host in brackets) */
  url: string;
}

export interface ClusterStoreUri {
  kind: 'etcd';
  tls: boolean;
  endpoints: StoreEndpoint[];
  /** the URI as given, for messages and `info` */
  text: string;
}

/** Docker's cluster-store-opts names (kv.*), plus the credentials etcd's auth needs. */
export interface ClusterStoreOpts {
  'kv.cacertfile'?: string;
  'kv.certfile'?: string;
  'kv.keyfile'?: string;
  'kv.username'?: string;
  'kv.password'?: string;
}

export const STORE_OPT_NAMES = ['kv.cacertfile', 'kv.certfile', 'kv.keyfile', 'kv.username', 'kv.password'] as const;

/** At most this many endpoints: etcd clusters have 3, 5 or 7 members. */
const MAX_ENDPOINTS = 16;
const SCHEMES: Readonly<Record<string, boolean>> = { 'etcd': false, 'etcds': true };
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * `etcd://HOST:PORT[,HOST:PORT...]` (plain HTTP) or `etcds://...` (TLS). Refused, with a message saying what
 * to write instead: another scheme, a missing or out-of-range port, an empty host, spaces, credentials
 * (they would land in `ps` output and shell history), a path, a query.
 */
export function parseClusterStoreUri(text: string, field = '--cluster-store'): ClusterStoreUri {
  const example = 'write it as etcd://HOST:PORT, several endpoints as etcd://HOST1:2379,HOST2:2379, etcds:// for TLS';
  // A password given in the URI (refused below) must not be printed back.
  const shown = typeof text === 'string' ? text.replace(/\/\/[^/]*@/, '//***@') : '';
  const fail = (why: string, hint = example) => new InvalidArgumentError(field, `"${shown}": ${why}`, hint);
  if (typeof text !== 'string' || text.length === 0) throw fail('the URI is empty');
  if (text.length > 2048) throw fail('the URI is longer than 2048 characters');
  if (/[\s\x00-\x1f\x7f]/.test(text)) throw fail('the URI holds spaces or control characters');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(text);
  if (!m) throw fail('not a URI with a scheme');
  const scheme = m[1]!.toLowerCase();
  let rest = m[2]!;
  if (!(scheme in SCHEMES)) {
    const known = scheme === 'consul' || scheme === 'zk' ? ` (Docker also took ${scheme}://; Berth speaks only to etcd)` : '';
    throw fail(`the scheme "${scheme}" is not supported${known}`, 'use etcd://HOST:PORT, or etcds://HOST:PORT for TLS');
  }
  if (rest.includes('@')) {
    throw fail('credentials in the URI are refused (they would show in process lists and shell history)',
      'give them as cluster-store-opts "kv.username" and "kv.password" in the config file');
  }
  if (/[?#]/.test(rest)) throw fail('a query or fragment is not supported');
  // A single trailing slash is harmless (etcd://h:2379/); a path is not: etcd has no such thing.
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (rest.includes('/')) throw fail('a path is not supported (keys live under /berth/ in the store)');
  const parts = rest.split(',');
  if (parts.length > MAX_ENDPOINTS) throw fail(`more than ${MAX_ENDPOINTS} endpoints`);
  const tls = SCHEMES[scheme]!;
  const seen = new Set<string>();
  const endpoints = parts.map((part) => {
    const ep = parseEndpoint(part, tls, fail);
    if (seen.has(ep.url)) throw fail(`the endpoint ${part} is given twice`);
    seen.add(ep.url);
    return ep;
  });
  return { kind: 'etcd', tls, endpoints, text };
}

function parseEndpoint(part: string, tls: boolean, fail: (why: string, hint?: string) => Error): StoreEndpoint {
  if (part === '') throw fail('an endpoint is empty');
  let host: string;
  let portText: string | undefined;
  if (part.startsWith('[')) {
    const close = part.indexOf(']');
    if (close < 0) throw fail(`"${part}" opens an IPv6 address with "[" and does not close it`);
    host = part.slice(1, close);
    const after = part.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw fail(`"${part}" has text after the IPv6 address`);
    portText = after === '' ? undefined : after.slice(1);
    if (!IPV6.test(host) || !host.includes(':')) throw fail(`"${host}" is not an IPv6 address`);
  } else {
    const colon = part.lastIndexOf(':');
    host = colon < 0 ? part : part.slice(0, colon);
    portText = colon < 0 ? undefined : part.slice(colon + 1);
    if (host.includes(':')) throw fail(`"${part}": write an IPv6 address in brackets, [ADDR]:PORT`);
  }
  if (host === '') throw fail(`"${part}" has no host`);
  if (portText === undefined) throw fail(`"${part}" has no port (etcd's client port is usually 2379)`, 'write HOST:PORT, e.g. etcd://10.0.0.5:2379');
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw fail(`the port "${portText}" of "${part}" is not a number from 1 to 65535`);
  }
  if (!part.startsWith('[') && parseIpv4(host) === undefined) {
    // Four dotted numbers that are not an IPv4 address (10.0.0.256) must not pass as a hostname.
    if (/^[\d.]+$/.test(host) || !HOSTNAME.test(host)) throw fail(`"${host}" is not an IP address or a host name`);
  }
  const port = Number(portText);
  const shown = part.startsWith('[') ? `[${host}]` : host;
  return { host, port, url: `${tls ? 'https' : 'http'}://${shown}:${port}` };
}

export interface AdvertiseSpec {
  /** an IPv4 address, or an interface name to resolve on the host */
  kind: 'address' | 'interface';
  value: string;
  port?: number;
  text: string;
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;

/**
 * Docker's --cluster-advertise: `ADDR`, `ADDR:PORT`, `IFACE` or `IFACE:PORT`. The address is the one other
 * hosts reach this host at (its underlay address: the VXLAN tunnel's end, flannel's PublicIP).
 */
export function parseAdvertise(text: string, field = '--cluster-advertise'): AdvertiseSpec {
  const hint = 'give this host\'s address on the network the hosts share (10.0.0.5), optionally with a port (10.0.0.5:2376), or an interface name (eth0)';
  const fail = (why: string) => new InvalidArgumentError(field, `"${text}": ${why}`, hint);
  if (typeof text !== 'string' || text === '') throw fail('it is empty');
  if (/[\s\x00-\x1f\x7f/]/.test(text)) throw fail('it holds spaces, slashes or control characters');
  const colon = text.lastIndexOf(':');
  const name = colon < 0 ? text : text.slice(0, colon);
  const portText = colon < 0 ? undefined : text.slice(colon + 1);
  if (name.includes(':')) throw fail('IPv6 advertise addresses are not supported (VXLAN underlays are IPv4 here)');
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw fail(`the port "${portText}" is not a number from 1 to 65535`);
    port = Number(portText);
  }
  const ip = parseIpv4(name);
  if (ip !== undefined) {
    // An address other hosts can reach: not "any", not loopback unless every host is this one (tests).
    if (ip === 0 || ip === 0xffffffff || name.startsWith('224.') || Number(name.split('.')[0]) >= 224) throw fail('not a unicast address');
    return { kind: 'address', value: name, port, text };
  }
  if (/^[\d.]+$/.test(name)) throw fail(`"${name}" is not an IPv4 address`);
  if (!IFNAME.test(name)) throw fail(`"${name}" is neither an IPv4 address nor an interface name (at most 15 characters)`);
  return { kind: 'interface', value: name, port, text };
}

/**
 * Checks the config file's `cluster-store-opts`: Docker's names only; TLS files are absolute paths and go
 * with an etcds:// URI; a user goes with a password.
 */
export function parseStoreOpts(opts: Record<string, unknown> | undefined, uri: ClusterStoreUri | undefined, field = 'cluster-store-opts'): ClusterStoreOpts {
  if (!opts) return {};
  const out: ClusterStoreOpts = {};
  for (const [k, v] of Object.entries(opts)) {
    if (!(STORE_OPT_NAMES as readonly string[]).includes(k)) {
      throw new InvalidArgumentError(field, `unknown option "${k}"`, `the options are ${STORE_OPT_NAMES.join(', ')}`);
    }
    if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(field, `"${k}" must be a non-empty string`);
    if (k.endsWith('file') && !v.startsWith('/')) throw new InvalidArgumentError(field, `"${k}" must be an absolute path, not "${v}"`);
    out[k as keyof ClusterStoreOpts] = v;
  }
  if (!!out['kv.certfile'] !== !!out['kv.keyfile']) {
    throw new InvalidArgumentError(field, 'kv.certfile and kv.keyfile go together', 'give both (a client certificate and its key), or neither');
  }
  if (!!out['kv.username'] !== !!out['kv.password']) {
    throw new InvalidArgumentError(field, 'kv.username and kv.password go together', 'give both, or neither');
  }
  const tlsFiles = out['kv.cacertfile'] || out['kv.certfile'];
  if (tlsFiles && uri && !uri.tls) {
    throw new InvalidArgumentError(field, `TLS files are given but the cluster store "${uri.text}" is plain etcd://`, 'write the URI as etcds://HOST:PORT');
  }
  return out;
}
