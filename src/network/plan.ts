import type { NetworkRequest } from '../options.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { driverFor } from './drivers/index.js';
import { checkNameFlags, isHostsName } from './files.js';
import { checkWanted } from './ipam.js';
import { portRequests } from './portspec.js';
import type { LinkRef, NetworkMode, NetworkPlan, NetworkRecord, PlanContext, PortRequest, RootlessNetworking } from './types.js';

// Docker's wording (moby runconfig/errors.go), so that scripts matching it keep working.
const CONFLICT_PUBLISH = 'conflicting options: port publishing and the container type network mode';
const ONLY_USER_IP = 'user specified IP address is supported on user defined networks only';
const ONLY_SUBNET_IP = 'user specified IP address is supported only when connecting to networks with user configured subnets';
const ONLY_USER_ALIAS = 'network-scoped alias is supported only for containers in user defined networks';
const SHARED_ALONE = 'container sharing network namespace with another container or host cannot be connected to any other network';
const NONE_ALONE = 'container cannot be connected to multiple networks with one of the networks in private (none) mode';

/** A network by name, full id, or unique id prefix (3+ characters), as Docker finds one. */
export function lookupNetwork(nets: readonly NetworkRecord[], ref: string): NetworkRecord {
  const hit = nets.find((n) => n.name === ref) ?? nets.find((n) => n.id === ref);
  if (hit) return hit;
  const byPrefix = ref.length >= 3 ? nets.filter((n) => n.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  throw new NotFoundError('network', ref);
}

/** Whether a network can carry published ports (its driver DNATs, and it reaches outside). */
export function canPublish(net: NetworkRecord): boolean {
  return !net.internal && !!driverFor(net.driver).firewall;
}

/**
 * Turns a container's network flags into a plan, checking everything that can be checked before
 * anything exists (Docker refuses these at create; before the plan, Berth found most only at start).
 * Pure: `nets` is every network record. NotFoundError for an unknown network, InvalidArgumentError
 * otherwise.
 */
export function planNetwork(req: NetworkRequest, ctx: PlanContext, nets: readonly NetworkRecord[]): NetworkPlan {
  const { mode, picked } = planMode(req.networks?.length ? req.networks : [ctx.rootless ? 'slirp4netns' : 'bridge'], ctx, nets);
  const userDefined = picked.filter((n) => !n.builtin);
  const primary = picked[0];
  const links = planLinks(ctx.links ?? [], mode);

  const ip = req.ip ? checkAddress(req.ip, 4, mode, primary) : undefined;
  const ip6 = req.ip6 ? checkAddress(req.ip6, 6, mode, primary) : undefined;

  let mac: string | undefined;
  if (req.mac) {
    if (mode.kind === 'host' || mode.kind === 'container') throw new InvalidArgumentError('mac-address', 'conflicting options: mac-address and the network mode', `--network ${mode.kind} uses another namespace's interfaces`);
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(req.mac)) throw new InvalidArgumentError('mac-address', `${req.mac} is not a valid mac address`, 'e.g. --mac-address 02:42:ac:11:00:02');
    mac = req.mac.toLowerCase();
  }

  const aliases = req.aliases ?? [];
  if (aliases.length && !userDefined.length) throw new InvalidArgumentError('network-alias', ONLY_USER_ALIAS, 'create a network and run the container on it');
  for (const a of aliases) {
    // An alias becomes a name in the network's hosts file: one field, nothing that starts a new one.
    if (!isHostsName(a)) throw new InvalidArgumentError('network-alias', `${JSON.stringify(a)} is not a valid alias`, 'an alias has no blanks, newlines or #');
  }

  const ports = planPorts(req, ctx.exposedPorts, mode, picked, ctx.rootless);

  if (mode.kind === 'container' && req.dns?.length) throw new InvalidArgumentError('dns', 'conflicting options: dns and the network mode', 'the container uses the resolv.conf of the one whose network it shares');
  if (mode.kind === 'container' && req.addHost?.length) throw new InvalidArgumentError('add-host', 'conflicting options: custom host-to-IP mapping and the network mode', 'the container uses the hosts file of the one whose network it shares');
  const names = { dns: req.dns ?? [], dnsSearch: req.dnsSearch ?? [], dnsOptions: req.dnsOption ?? [], extraHosts: req.addHost ?? [] };
  checkNameFlags(names, !!primary?.ipam);

  return {
    mode, ...(ip ? { ip } : {}), ...(ip6 ? { ip6 } : {}), ...(mac ? { mac } : {}), aliases: [...aliases], ports, ...names, links,
  };
}

function planMode(names: readonly string[], ctx: PlanContext, nets: readonly NetworkRecord[]): { mode: NetworkMode; picked: NetworkRecord[] } {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new InvalidArgumentError('network', `network "${n}" is specified multiple times`);
    seen.add(n);
  }
  if (names.some((n) => n.startsWith('container:'))) {
    if (names.length > 1) throw new InvalidArgumentError('network', SHARED_ALONE, 'give --network container:X alone');
    if (!ctx.sharedWith) throw new InvalidArgumentError('network', `${names[0]}: the container is not resolved`, 'name an existing container: --network container:NAME');
    return { mode: { kind: 'container', id: ctx.sharedWith }, picked: [] };
  }
  if (ctx.rootless) {
    const rootless = planRootlessMode(names);
    if (rootless) return rootless;
  }
  const picked = names.map((n) => lookupNetwork(nets, n));
  const ids = new Set<string>();
  for (const [i, net] of picked.entries()) {
    // Two spellings (name and id) of one network.
    if (ids.has(net.id)) throw new InvalidArgumentError('network', `network "${names[i]}" is specified multiple times`);
    ids.add(net.id);
  }
  const kinds = picked.map((n) => driverFor(n.driver).mode);
  if (kinds.some((k) => k !== 'private') && picked.length > 1) {
    throw new InvalidArgumentError('network', kinds.includes('none') ? NONE_ALONE : SHARED_ALONE, 'give --network host or none alone');
  }
  if (kinds[0] === 'host') return { mode: { kind: 'host' }, picked };
  if (kinds[0] === 'none') return { mode: { kind: 'none' }, picked };
  if (kinds[0] !== 'private') throw new InvalidArgumentError('network', `network ${picked[0]!.name} (${picked[0]!.driver}) gives no sandbox of its own`, 'use --network container:NAME');
  return { mode: { kind: 'networks', networks: picked.map((n) => ({ name: n.name, id: n.id })) }, picked };
}

/**
 * Rootless Berth has no bridge (its veths, iptables and sysctls are the host's root's): a container gets
 * `slirp4netns` (the default), `none`, `host` or another container's netns. Undefined: `host` or `none`,
 * planned as for root.
 */
function planRootlessMode(names: readonly string[]): { mode: NetworkMode; picked: NetworkRecord[] } | undefined {
  if (names.length === 1 && (names[0] === 'host' || names[0] === 'none')) return undefined;
  if (names.length === 1 && names[0] === 'slirp4netns') return { mode: { kind: 'slirp4netns' }, picked: [] };
  const other = names.find((n) => !['host', 'none', 'slirp4netns'].includes(n)) ?? names[1]!;
  throw new InvalidArgumentError('network', `rootless Berth cannot attach containers to network "${other}": bridge networks need iptables and interfaces only the host's root may make`,
    'use the default (--network slirp4netns), --network none or --network host, or run Berth as root');
}

/** --ip / --ip6: only on the primary network, a user-defined one with a subnet of that family. */
function checkAddress(wanted: string, family: 4 | 6, mode: NetworkMode, primary: NetworkRecord | undefined): string {
  const field = family === 6 ? 'ip6' : 'ip';
  if (mode.kind !== 'networks' || !primary || primary.builtin) throw new InvalidArgumentError(field, ONLY_USER_IP, 'create a network with --subnet and run the container on it');
  const spec = family === 6 ? primary.ipam6 : primary.ipam;
  if (!spec) {
    throw new InvalidArgumentError(field, family === 6 ? `--ip6 ${wanted}: network ${primary.name} has no IPv6 subnet` : ONLY_SUBNET_IP, family === 6 ? 'create the network with --ipv6' : 'use a network with a subnet');
  }
  return checkWanted(spec, family, wanted, primary.name);
}

/**
 * slirp4netns listens on the host as the user: on its loopback unless an address is named (the issue's
 * "published on the host's loopback"; 0.0.0.0, the default, becomes 127.0.0.1), IPv4 only, and on no port
 * below the host's ip_unprivileged_port_start, which the kernel would refuse.
 */
function planSlirpPorts(ports: PortRequest[], rootless: RootlessNetworking): PortRequest[] {
  const start = rootless.unprivilegedPortStart;
  return ports.map((p) => {
    if (p.hostIp.includes(':')) throw new InvalidArgumentError('publish', `[${p.hostIp}]:${p.hostPorts?.first ?? ''}: rootless Berth publishes IPv4 ports only`, 'publish on 127.0.0.1 or another IPv4 address');
    if (p.hostPorts && p.hostPorts.first < start) {
      throw new InvalidArgumentError('publish', `host port ${p.hostPorts.first} is below ${start}, the first port a non-root user may bind on this host (net.ipv4.ip_unprivileged_port_start)`,
        `publish on port ${start} or above, or have root lower net.ipv4.ip_unprivileged_port_start`);
    }
    return { ...p, hostIp: p.hostIp === '0.0.0.0' ? '127.0.0.1' : p.hostIp };
  });
}

function planPorts(req: NetworkRequest, exposed: readonly string[], mode: NetworkMode, picked: readonly NetworkRecord[], rootless?: RootlessNetworking): PortRequest[] {
  const publish = req.publish ?? [];
  if (mode.kind === 'slirp4netns') return planSlirpPorts(portRequests(publish, req.publishAll ?? false, exposed), rootless!);
  if (mode.kind !== 'networks') {
    // Parsed anyway: a malformed spec is named as such, before the conflict.
    portRequests(publish, false, []);
    if (publish.length || req.publishAll) {
      throw new InvalidArgumentError('publish', CONFLICT_PUBLISH, `--network ${mode.kind === 'container' ? 'container:X' : mode.kind} has no ports of its own to publish: drop -p and -P`);
    }
    return [];
  }
  const ports = portRequests(publish, req.publishAll ?? false, exposed);
  if (ports.length && !picked.some(canPublish)) {
    throw new InvalidArgumentError('publish', 'ports can only be published on a bridge network that is not internal', 'add a bridge network with --network');
  }
  const publishing = picked.find(canPublish);
  const v6 = ports.find((p) => p.hostIp.includes(':'));
  if (v6 && publishing && !publishing.ipam6) {
    throw new InvalidArgumentError('publish', `[${v6.hostIp}]:${v6.hostPorts?.first ?? ''}:${v6.containerPort}: network ${publishing.name} has no IPv6 subnet`, 'publish IPv6 ports on a network created with --ipv6');
  }
  // One container per host port and protocol (hostports.ts), so two fixed mappings of one port can never both work.
  const fixed = new Set<string>();
  for (const p of ports) {
    if (!p.hostPorts || p.hostPorts.first !== p.hostPorts.last) continue;
    const key = `${p.hostPorts.first}/${p.protocol}`;
    if (fixed.has(key)) throw new InvalidArgumentError('publish', `Bind for ${p.hostIp}:${p.hostPorts.first} failed: port is already allocated`, `host port ${key} is published twice by this container: give each mapping its own host port`);
    fixed.add(key);
  }
  return ports;
}

function planLinks(links: readonly LinkRef[], mode: NetworkMode): LinkRef[] {
  if (!links.length) return [];
  if (mode.kind === 'container') throw new InvalidArgumentError('link', "conflicting options: container type network can't be used with links. This would result in undefined behavior");
  if (mode.kind === 'host') throw new InvalidArgumentError('link', "conflicting options: host type networking can't be used with links. This would result in undefined behavior");
  for (const l of links) {
    if (!isHostsName(l.alias)) throw new InvalidArgumentError('link', `${JSON.stringify(l.alias)} is not a valid link alias`, 'an alias has no blanks, newlines or #');
  }
  return links.map((l) => ({ id: l.id, name: l.name, alias: l.alias }));
}
