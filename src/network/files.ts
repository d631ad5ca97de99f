import { isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import type { NetworkPlan } from './types.js';

/** The flags that become lines of /etc/resolv.conf and /etc/hosts. */
export type NameFlags = Pick<NetworkPlan, 'dns' | 'dnsSearch' | 'dnsOptions' | 'extraHosts'>;

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

/**
 * An IPv4 or IPv6 address as Go's net.ParseIP takes it (Docker's ValidateIPAddress): no zone, no
 * brackets, nothing around it. What passes is written into resolv.conf and hosts lines, so nothing else may.
 */
export function isIpAddress(text: string): boolean {
  return isIP(text) !== 0 && !text.includes('%');
}

// Docker's domainRegexp (opts/opts.go), without its stray `:?`s: labels of letters, digits and inner
// hyphens, dot-separated, an optional final dot; the first character a letter, under 255 in all.
const DOMAIN = /^[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$/;
// resolv.conf options are single words such as ndots:2, timeout:1, rotate, edns0, no-aaaa.
const RESOLV_OPTION = /^[a-zA-Z0-9][a-zA-Z0-9_.:+-]*$/;
// A hosts-file name is one field: nothing that ends it (blank, newline) or starts a comment.
const HOSTS_NAME = /^[^\s#]+$/;

const printable = (s: string) => JSON.stringify(s);

/** Whether `text` can be one name of a hosts-file line (aliases, link aliases, --add-host names). */
export function isHostsName(text: string): boolean {
  return HOSTS_NAME.test(text);
}

/**
 * Refuses the DNS and hosts flags before anything is made (Docker checks them in the CLI and the
 * daemon at create): each value goes into /etc/resolv.conf or /etc/hosts as one field, so a newline or
 * blank would let it add lines of its own (`--dns-search "x\nnameserver 10.0.0.1"`). `hasGateway`:
 * whether `host-gateway` will have an address to stand for.
 */
export function checkNameFlags(f: Partial<NameFlags>, hasGateway = true): void {
  for (const ns of f.dns ?? []) {
    if (!isIpAddress(ns)) throw new InvalidArgumentError('dns', `${printable(ns)} is not an IP address`, 'give the address of a name server, e.g. --dns 10.0.0.2');
  }
  for (const d of f.dnsSearch ?? []) {
    if (d !== '.' && !(DOMAIN.test(d) && d.length < 255)) {
      throw new InvalidArgumentError('dns-search', `${printable(d)} is not a valid domain`, 'give a domain such as example.com, or "." for none');
    }
  }
  for (const o of f.dnsOptions ?? []) {
    if (!RESOLV_OPTION.test(o)) throw new InvalidArgumentError('dns-option', `${printable(o)} is not a resolv.conf option`, 'give one option per flag, e.g. --dns-option ndots:2');
  }
  for (const h of f.extraHosts ?? []) parseAddHost(h, hasGateway ? '0.0.0.0' : undefined);
}

/** `--add-host NAME:IP` or `NAME=IP`; `host-gateway` stands for the gateway of the primary network. */
export function parseAddHost(spec: string, hostGateway: string | undefined): HostEntry {
  const sep = spec.includes('=') ? '=' : ':';
  const at = spec.indexOf(sep);
  const name = spec.slice(0, at);
  let ip = spec.slice(at + 1);
  if (at <= 0 || !ip) throw new InvalidArgumentError('add-host', `${printable(spec)} is not NAME:IP`, 'e.g. --add-host db:10.0.0.9');
  if (!HOSTS_NAME.test(name)) throw new InvalidArgumentError('add-host', `${printable(spec)}: ${printable(name)} is not a host name`, 'a name has no blanks, newlines or #');
  if (ip === 'host-gateway') {
    if (!hostGateway) throw new InvalidArgumentError('add-host', `"${spec}": this container has no gateway for host-gateway to stand for`, 'use host-gateway only on a network with a subnet, or give the address');
    ip = hostGateway;
  }
  // Docker takes IPv6 in brackets too: --add-host h:[::1].
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!isIpAddress(ip)) throw new InvalidArgumentError('add-host', `${printable(spec)}: ${printable(ip)} is not an IP address`, 'e.g. --add-host db:10.0.0.9');
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
  req: Partial<Pick<NameFlags, 'dns' | 'dnsSearch' | 'dnsOptions'>>,
  embeddedResolver: string | undefined,
): ResolvConf {
  // Checked at create already; again here for records written before the check existed.
  checkNameFlags({ dns: req.dns, dnsSearch: req.dnsSearch, dnsOptions: req.dnsOptions });
  const upstream = usableUpstreams(host);
  const nameservers = req.dns?.length ? req.dns
    : embeddedResolver ? [embeddedResolver]
    : upstream.length ? upstream : FALLBACK_NAMESERVERS;
  const search = req.dnsSearch?.length ? req.dnsSearch.filter((s) => s !== '.') : host.search;
  const options = req.dnsOptions?.length ? req.dnsOptions : host.options;
  return { nameservers, search, options };
}
