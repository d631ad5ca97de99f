import { readFileSync } from 'node:fs';
import { BadStateError } from '../errors.js';
import { shortId } from '../ids.js';
import { containerResolvConf, parseAddHost, parseResolvConf, renderHosts, renderResolvConf, type HostEntry, type NameFlags, type ResolvConf } from './files.js';
import { SLIRP } from './slirp.js';
import type { NetworkRecord, SandboxRecord, SandboxStatus } from './types.js';

/** Host files read once per manager: they are inputs, like HostFacts. */
export interface HostFiles {
  resolv: ResolvConf;
  resolvText: string;
  hostsText: string;
}

export function readHostFiles(): HostFiles {
  const read = (f: string) => { try { return readFileSync(f, 'utf8'); } catch { return ''; } };
  const resolvText = read('/etc/resolv.conf');
  return { resolv: parseResolvConf(resolvText), resolvText, hostsText: read('/etc/hosts') };
}

/** Builds the status (and file contents) of a sandbox from its record. Pure apart from the inputs. */
export function sandboxStatus(
  sb: SandboxRecord,
  nets: ReadonlyMap<string, NetworkRecord>,
  linked: ReadonlyMap<string, SandboxRecord>,
  host: HostFiles,
): SandboxStatus {
  const req = nameFlagsOf(sb);
  const primary = sb.endpoints[0];
  const fqdn = sb.domainname ? `${sb.hostname}.${sb.domainname}` : sb.hostname;
  const addHosts = req.extraHosts.map((h) => parseAddHost(h, primary?.gateway));
  const endpoints = sb.endpoints.map((ep) => ({
    network: ep.networkName, networkId: ep.networkId, ipv4: ep.ipv4, prefixLength: ep.prefixLength, mac: ep.mac,
    gateway: ep.gateway, interface: ep.interface, aliases: ep.aliases,
    ...(ep.ipv6 ? { ipv6: `${ep.ipv6}/${ep.prefixLength6}`, gateway6: ep.gateway6 } : {}),
  }));
  const base = { mode: sb.mode, ports: sb.ports, endpoints, hostname: `${sb.hostname}\n`, ...(sb.netnsPath ? { netnsPath: sb.netnsPath } : {}), ...(sb.usernsPath ? { usernsPath: sb.usernsPath } : {}) };

  if (sb.mode === 'host') {
    // Docker copies the host's files for host networking: same netns, so loopback servers work.
    const extra = addHosts.map((e) => `${e.ip}\t${e.names.join(' ')}`).join('\n');
    const resolvConf = req.dns.length || req.dnsSearch.length || req.dnsOptions.length
      ? renderResolvConf({ ...containerResolvConf(host.resolv, req, undefined), nameservers: req.dns.length ? req.dns : host.resolv.nameservers })
      : host.resolvText;
    return { ...base, hostsFile: host.hostsText + (extra ? `${extra}\n` : ''), resolvConf };
  }

  const links: HostEntry[] = (sb.links ?? []).map((l) => {
    const ip = linked.get(l.id)?.endpoints.find((e) => e.ipv4)?.ipv4;
    if (!ip) throw new BadStateError(`cannot link to container ${l.name}: it has no IP address`, 'start the linked container first, on the same network');
    return { ip, names: [l.alias, shortId(l.id), l.name] };
  });
  const selfNames = [fqdn, sb.hostname, shortId(sb.containerId)];
  const self: HostEntry[] = sb.endpoints.flatMap((e) => [e.ipv4, e.ipv6].filter((ip): ip is string => !!ip).map((ip) => ({ ip, names: selfNames })));
  const primaryNet = primary ? nets.get(primary.networkId) : undefined;
  // slirp4netns answers DNS itself, forwarding to the host's resolvers (loopback ones included, which a
  // container could never reach directly).
  const embedded = sb.mode === 'slirp4netns' ? SLIRP.dns : primaryNet?.dns && primary?.gateway ? primary.gateway : undefined;
  return {
    ...base,
    hostsFile: renderHosts([...addHosts, ...links], self),
    resolvConf: renderResolvConf(containerResolvConf(host.resolv, req, embedded)),
  };
}

/** The DNS and hosts flags of a sandbox; records of versions before NetworkPlan kept the raw request. */
function nameFlagsOf(sb: SandboxRecord): NameFlags {
  if (sb.plan) return sb.plan;
  const r = sb.request ?? {};
  return { dns: r.dns ?? [], dnsSearch: r.dnsSearch ?? [], dnsOptions: r.dnsOption ?? [], extraHosts: r.addHost ?? [] };
}
