import { InvalidArgumentError } from '../errors.js';
import { parseIpv4 } from './cidr.js';

/** One /etc/hosts line. */
export interface HostEntry {
  ip: string;
  names: string[];
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

// Docker's fixed head of /etc/hosts (libnetwork/etchosts defaultContent).
const HOSTS_HEAD = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

// Docker writes these when the host has no usable nameserver; written, never contacted by Berth.
export const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];

/** Docker's order: fixed head, extra entries (--add-host, links), then the container's own addresses. */
export function renderHosts(extra: readonly HostEntry[], self: readonly HostEntry[]): string {
  const lines = [...HOSTS_HEAD, ...[...extra, ...self].map(formatEntry)];
  return lines.join('\n') + '\n';
}

function formatEntry(e: HostEntry): string {
  return `${e.ip}\t${[...new Set(e.names.filter(Boolean))].join(' ')}`;
}

/** `--add-host NAME:IP` or `NAME=IP`; `host-gateway` stands for the gateway of the primary network. */
export function parseAddHost(spec: string, hostGateway: string | undefined): HostEntry {
  const sep = spec.includes('=') ? '=' : ':';
  const at = spec.indexOf(sep);
  const name = spec.slice(0, at);
  let ip = spec.slice(at + 1);
  if (at <= 0 || !ip) throw new InvalidArgumentError('add-host', `"${spec}" is not NAME:IP`);
  if (ip === 'host-gateway') {
    if (!hostGateway) throw new InvalidArgumentError('add-host', `"${spec}": this container has no gateway`);
    ip = hostGateway;
  }
  if (parseIpv4(ip) === undefined && !/^[0-9a-fA-F:]+$/.test(ip)) throw new InvalidArgumentError('add-host', `"${spec}": ${ip} is not an IP address`);
  return { ip, names: [name] };
}

export function parseResolvConf(text: string): ResolvConf {
  const conf: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const [key, ...values] = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && values[0]) conf.nameservers.push(values[0]);
    else if (key === 'search' || key === 'domain') conf.search = values;
    else if (key === 'options') conf.options.push(...values);
  }
  return conf;
}

export function renderResolvConf(conf: ResolvConf): string {
  const lines = conf.nameservers.map((ns) => `nameserver ${ns}`);
  if (conf.search.length) lines.push(`search ${conf.search.join(' ')}`);
  if (conf.options.length) lines.push(`options ${conf.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** Loopback servers of the host are unreachable from another netns (Docker filters them too). */
export function usableUpstreams(host: ResolvConf): string[] {
  return host.nameservers.filter((ns) => !ns.startsWith('127.') && ns !== '::1');
}

/**
 * The container's resolv.conf, as Docker builds it: --dns replaces the servers; otherwise the embedded
 * resolver (user-defined networks) or the host's usable servers, falling back to Docker's public pair.
 * --dns-search and --dns-option replace the host's lists; a search of "." means none.
 */
export function containerResolvConf(
  host: ResolvConf,
  req: { dns?: string[]; dnsSearch?: string[]; dnsOption?: string[] },
  embeddedResolver: string | undefined,
): ResolvConf {
  for (const ns of req.dns ?? []) {
    if (parseIpv4(ns) === undefined && !/^[0-9a-fA-F:]+$/.test(ns)) throw new InvalidArgumentError('dns', `${ns} is not an IP address`);
  }
  const upstream = usableUpstreams(host);
  const nameservers = req.dns?.length ? req.dns
    : embeddedResolver ? [embeddedResolver]
    : upstream.length ? upstream : FALLBACK_NAMESERVERS;
  const search = req.dnsSearch?.length ? req.dnsSearch.filter((s) => s !== '.') : host.search;
  const options = req.dnsOption?.length ? req.dnsOption : host.options;
  return { nameservers, search, options };
}
