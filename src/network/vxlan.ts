import { createHash } from 'node:crypto';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { run } from '../util/exec.js';
import { formatIpv4, parseCidr, requireIpv4 } from './cidr.js';

/**
 * What a multi-host network needs in each host's kernel, as lines for `ip -batch` and `bridge -batch`
 * (the FDB belongs to `bridge`, not `ip`), plus the probes and the reader a repair diffs against. Pure
 * builders first: a driver decides what should exist from the cluster store and queues the lines.
 *
 * Two schemes:
 * - overlay (Docker's): per network a bridge holding the gateway (the SAME address on every host) and a
 *   VXLAN device `berthvx<VNI>` in it, `nolearning proxy`; each remote endpoint is an FDB entry (its MAC
 *   to its host) and a permanent neighbour entry (its IP to its MAC). No all-zeros FDB entry, so nothing
 *   is flooded: ARP for a remote container is answered by the VXLAN device itself from the neighbour
 *   table, and ARP for the gateway never leaves the host, so the hosts' identical gateways never meet.
 * - flannel: each host leases a subnet; remote subnets are routed, by `host-gw` (a route via the other
 *   host, which must share the link) or by `vxlan` (flannel's L3 scheme on `berthfl<VNI>`: a route via the
 *   remote subnet's .0 onlink, a neighbour entry .0 → the remote VTEP MAC, an FDB entry MAC → the host).
 */

/** VXLAN's IANA port (RFC 7348); Linux's own default (8472) is the pre-standard one flannel also picks. */
export const VXLAN_PORT = 4789;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers. */
export const VXLAN_OVERHEAD = 50;
/** `proto` of the routes Berth adds for flannel, so the reader finds ours and no one else's (rtnetlink protocol numbers ≥ 5 are free for daemons). */
export const ROUTE_PROTO = 190;

const TIMEOUT = 15_000;
const MAX_VNI = 16_777_215;

/** The lines of one change: `ip -batch` first (devices, addresses, neighbours, routes), then `bridge -batch` (FDB). */
export interface KernelLines {
  ip: string[];
  bridge: string[];
}

export function parseVni(raw: string | number, field = 'vni'): number {
  const n = typeof raw === 'number' ? raw : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_VNI) throw new InvalidArgumentError(field, `${raw} is not a VXLAN network identifier`, `give a whole number from 1 to ${MAX_VNI}`);
  return n;
}

export const overlayVxlanName = (vni: number) => `berthvx${parseVni(vni)}`;
export const flannelVxlanName = (vni: number) => `berthfl${parseVni(vni)}`;
/** The per-network bridge of an overlay or flannel network: berth + 10 characters of the network id. */
export const overlayBridgeName = (networkId: string) => `berth${networkId.slice(0, 10)}`;

function checkMac(mac: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac) || /^0{2}(:0{2}){5}$/.test(mac)) {
    throw new InvalidArgumentError('mac', `${mac} is not a unicast MAC address`, 'give six hex pairs, as 02:42:0a:46:00:02');
  }
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new InvalidArgumentError('mac', `${mac} is a multicast address`, 'an endpoint needs a unicast MAC (first octet even)');
  return mac.toLowerCase();
}

function checkIp(ip: string, field: string): string {
  requireIpv4(ip, field);
  return ip;
}

/** An interface address with its prefix (10.70.0.1/16): host bits allowed, unlike a subnet. */
function checkIfAddr(text: string, field: string): string {
  const [ip, bits, extra] = text.split('/');
  const prefix = Number(bits);
  if (extra !== undefined || !/^\d{1,2}$/.test(bits ?? '') || prefix > 32) throw new InvalidArgumentError(field, `"${text}" is not an address with a prefix such as 10.70.0.1/16`);
  requireIpv4(ip ?? '', field);
  return text;
}

function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new InvalidArgumentError('mtu', `${mtu} is out of range`, 'give an MTU from 68 to 65535');
  return mtu;
}

export interface OverlayHostSpec {
  networkId: string;
  vni: number;
  /** the gateway as addr/prefix, the same on every host */
  gateway: string;
  /** this host's underlay (advertise) address */
  local: string;
  mtu: number;
  dstport?: number;
  /** the bridge's name; overlayBridgeName(networkId) unless given (the overlay's own netns names it br0) */
  bridge?: string;
}

/**
 * The overlay bridge's own MAC on one host: fixed (a bridge left to the kernel takes a port's MAC and
 * changes it when that port goes; see drivers/bridge.ts bridgeMac), and different per host, so a frame
 * one host's bridge sends over the VXLAN never arrives elsewhere with the receiver's own MAC as source.
 */
export function overlayBridgeMac(networkId: string, local: string): string {
  return `02:${createHash('sha256').update(`${networkId} ${local}`).digest('hex').slice(0, 10).match(/../g)!.join(':')}`;
}

/** The bridge with the gateway on it. The bridge is named for its owner. */
export function overlayBridgeLines(spec: OverlayHostSpec): string[] {
  const br = spec.bridge ?? overlayBridgeName(spec.networkId);
  return [
    `link add ${br} mtu ${checkMtu(spec.mtu)} address ${overlayBridgeMac(spec.networkId, checkIp(spec.local, 'advertise address'))} type bridge`,
    `link set dev ${br} alias berth:${spec.networkId}`,
    `addr add ${checkIfAddr(spec.gateway, 'gateway')} dev ${br}`,
    `link set ${br} up`,
  ];
}

/**
 * The VXLAN device, named for its owner too. Its UDP socket lives in the netns the device is made in
 * (the underlay's), wherever the device itself is moved afterwards: Docker's overlay makes it so.
 */
export function overlayVxlanLines(spec: OverlayHostSpec): string[] {
  const vx = overlayVxlanName(spec.vni);
  return [
    // nolearning: entries come from the store only; proxy: the device answers ARP from its neighbour table.
    `link add ${vx} mtu ${checkMtu(spec.mtu)} type vxlan id ${spec.vni} local ${checkIp(spec.local, 'advertise address')} dstport ${spec.dstport ?? VXLAN_PORT} nolearning proxy`,
    `link set dev ${vx} alias berth:${spec.networkId}`,
  ];
}

/** The VXLAN device as a port of the bridge, where both are. */
export function overlayPortLines(spec: Pick<OverlayHostSpec, 'networkId' | 'vni' | 'bridge'>): string[] {
  const vx = overlayVxlanName(spec.vni);
  return [`link set ${vx} master ${spec.bridge ?? overlayBridgeName(spec.networkId)}`, `link set ${vx} up`];
}

/** The bridge (gateway on it) and its VXLAN port, all in one netns. */
export function overlayNetworkLines(spec: OverlayHostSpec): KernelLines {
  return { ip: [...overlayBridgeLines(spec), ...overlayVxlanLines(spec), ...overlayPortLines(spec)], bridge: [] };
}

/** Removes an overlay network's devices on one host (the VXLAN device first: its entries go with it). */
export function overlayNetworkTeardown(networkId: string, vni: number): KernelLines {
  return { ip: [`link del ${overlayVxlanName(vni)}`, `link del ${overlayBridgeName(networkId)}`], bridge: [] };
}

/** A container on another host: where its MAC lives, and its IP's MAC for the VXLAN device's ARP proxy. */
export interface RemoteEndpoint {
  ip: string;
  mac: string;
  /** the underlay address of the host it runs on */
  host: string;
}

export function remoteEndpointLines(vni: number, ep: RemoteEndpoint): KernelLines {
  const dev = overlayVxlanName(vni);
  const mac = checkMac(ep.mac);
  return {
    ip: [`neigh replace ${checkIp(ep.ip, 'endpoint address')} lladdr ${mac} dev ${dev} nud permanent`],
    bridge: [`fdb replace ${mac} dev ${dev} dst ${checkIp(ep.host, 'host address')} self permanent`],
  };
}

export function remoteEndpointRemoval(vni: number, ep: Pick<RemoteEndpoint, 'ip' | 'mac'>): KernelLines {
  const dev = overlayVxlanName(vni);
  return { ip: [`neigh del ${ep.ip} dev ${dev}`], bridge: [`fdb del ${checkMac(ep.mac)} dev ${dev} self`] };
}

/** Flannel host-gw: the other host's subnet is routed straight to it (both hosts on one link). */
export function hostGwRouteLines(remote: { subnet: string; host: string }): KernelLines {
  parseCidr(remote.subnet, 'subnet');
  return { ip: [`route replace ${remote.subnet} via ${checkIp(remote.host, 'host address')} proto ${ROUTE_PROTO}`], bridge: [] };
}

export function hostGwRouteRemoval(remote: { subnet: string; host: string }): KernelLines {
  return { ip: [`route del ${remote.subnet} via ${remote.host} proto ${ROUTE_PROTO}`], bridge: [] };
}

export interface FlannelVtepSpec {
  vni: number;
  /** this host's leased subnet (its .0 goes on the device as a /32, as flannel's) */
  subnet: string;
  local: string;
  mtu: number;
  dstport?: number;
  /** a fixed VTEP MAC (flannel keeps one per host in its lease); the kernel picks one otherwise */
  mac?: string;
}

/** The network of a subnet, as flannel names a host's VTEP address: 10.5.3.0 of 10.5.3.0/24. */
function subnetBase(subnet: string): string {
  return formatIpv4(parseCidr(subnet, 'subnet').base);
}

export function flannelVtepLines(spec: FlannelVtepSpec): KernelLines {
  const dev = flannelVxlanName(spec.vni);
  const mac = spec.mac ? ` address ${checkMac(spec.mac)}` : '';
  return {
    ip: [
      `link add ${dev} mtu ${checkMtu(spec.mtu)}${mac} type vxlan id ${spec.vni} local ${checkIp(spec.local, 'advertise address')} dstport ${spec.dstport ?? VXLAN_PORT} nolearning`,
      `addr add ${subnetBase(spec.subnet)}/32 dev ${dev}`,
      `link set ${dev} up`,
    ],
    bridge: [],
  };
}

export interface FlannelRemote {
  subnet: string;
  /** the remote host's underlay address */
  host: string;
  /** the remote VTEP's MAC (flannel's VtepMAC in the lease) */
  vtepMac: string;
}

export function flannelRemoteLines(vni: number, r: FlannelRemote): KernelLines {
  const dev = flannelVxlanName(vni);
  const gw = subnetBase(r.subnet);
  const mac = checkMac(r.vtepMac);
  return {
    ip: [
      `neigh replace ${gw} lladdr ${mac} dev ${dev} nud permanent`,
      `route replace ${r.subnet} via ${gw} dev ${dev} onlink proto ${ROUTE_PROTO}`,
    ],
    bridge: [`fdb replace ${mac} dev ${dev} dst ${checkIp(r.host, 'host address')} self permanent`],
  };
}

export function flannelRemoteRemoval(vni: number, r: FlannelRemote): KernelLines {
  const dev = flannelVxlanName(vni);
  const gw = subnetBase(r.subnet);
  return {
    ip: [`route del ${r.subnet} via ${gw} dev ${dev} proto ${ROUTE_PROTO}`, `neigh del ${gw} dev ${dev}`],
    bridge: [`fdb del ${checkMac(r.vtepMac)} dev ${dev} self`],
  };
}

export function joinLines(...parts: KernelLines[]): KernelLines {
  return { ip: parts.flatMap((p) => p.ip), bridge: parts.flatMap((p) => p.bridge) };
}

// ---- running lines and probes: in this process's netns, or (tests, helpers) in the netns at `netns`

function cmd(file: string, args: readonly string[], netns?: string): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netns}`, file, ...args]] : [file, [...args]];
}

const gone = (stderr: string) => /No such file or directory|Cannot find device|No such process|does not exist/i.test(stderr);

/**
 * Applies lines: `ip -batch`, then `bridge -batch`. With `forgiving` (removals, as CNI DEL), a failed
 * batch is re-run line by line and an entry or device already gone counts as removed; `ip -force` does
 * not do this, since `ip neigh` exits on the first error.
 */
export async function applyLines(lines: KernelLines, opts: { netns?: string; forgiving?: boolean } = {}): Promise<void> {
  for (const tool of ['ip', 'bridge'] as const) {
    const list = lines[tool];
    if (!list.length) continue;
    try {
      await run(...cmd(tool, ['-batch', '-'], opts.netns), { input: list.join('\n') + '\n', timeout: TIMEOUT });
    } catch (err) {
      if (!opts.forgiving) throw err;
      for (const line of list) await run(...cmd(tool, line.split(' '), opts.netns), { timeout: TIMEOUT, alreadyGone: gone }).catch((e: unknown) => {
        if (!(e as { alreadyGone?: boolean }).alreadyGone) throw e;
      });
    }
  }
}

async function json<T>(file: string, args: readonly string[], netns?: string): Promise<T[]> {
  const { stdout } = await run(...cmd(file, ['-j', ...args], netns), { timeout: TIMEOUT });
  return stdout.trim() ? JSON.parse(stdout) as T[] : [];
}

/** The underlay link holding `address` (the advertise address) and its MTU; a clear error when no link holds it. */
export async function underlayOf(address: string, netns?: string): Promise<{ dev: string; mtu: number }> {
  const links = await json<{ ifname: string; mtu: number; addr_info?: { local: string }[] }>('ip', ['addr', 'show'], netns);
  const link = links.find((l) => l.addr_info?.some((a) => a.local === address));
  if (!link) throw new BadStateError(`no interface of this host has the advertise address ${address}`, 'give --cluster-advertise an address of one of this host\'s interfaces');
  return { dev: link.ifname, mtu: link.mtu };
}

/** The MTU of an overlay device: what was asked, else the underlay's minus VXLAN's headers. */
export async function overlayMtu(advertise: string, asked?: number, netns?: string): Promise<number> {
  if (asked !== undefined) return checkMtu(asked);
  return checkMtu((await underlayOf(advertise, netns)).mtu - VXLAN_OVERHEAD);
}

/** A link's MAC (a flannel host's VtepMAC, once its device is made); undefined when the link is absent. */
export async function linkMac(dev: string, netns?: string): Promise<string | undefined> {
  const [link] = await json<{ address?: string }>('ip', ['link', 'show', 'dev', dev], netns).catch((err: unknown) => {
    if (gone(String((err as { stderr?: string }).stderr ?? ''))) return [];
    throw err;
  });
  return link?.address;
}

/** What one VXLAN device holds now: its unicast FDB entries, its permanent neighbours, and our routes through it. */
export interface VxlanState {
  fdb: { mac: string; dst: string }[];
  neigh: { ip: string; mac: string }[];
  routes: { subnet: string; via: string }[];
}

export async function readVxlanState(dev: string, netns?: string): Promise<VxlanState | undefined> {
  if ((await linkMac(dev, netns)) === undefined) return undefined;
  const fdb = await json<{ mac: string; dst?: string; flags?: string[] }>('bridge', ['fdb', 'show', 'dev', dev], netns);
  const neigh = await json<{ dst: string; lladdr?: string; state?: string[] }>('ip', ['neigh', 'show', 'dev', dev], netns);
  return {
    fdb: fdb.filter((f) => f.dst && f.flags?.includes('self')).map((f) => ({ mac: f.mac, dst: f.dst! })),
    neigh: neigh.filter((n) => n.lladdr && n.state?.includes('PERMANENT')).map((n) => ({ ip: n.dst, mac: n.lladdr! })),
    routes: await readRoutes(netns, dev),
  };
}

/** Routes Berth added (proto ROUTE_PROTO), on `dev` or anywhere. */
export async function readRoutes(netns?: string, dev?: string): Promise<{ subnet: string; via: string }[]> {
  const routes = await json<{ dst: string; gateway?: string }>('ip', ['route', 'show', 'proto', String(ROUTE_PROTO), ...(dev ? ['dev', dev] : [])], netns);
  return routes.filter((r) => r.gateway).map((r) => ({ subnet: r.dst, via: r.gateway! }));
}

/**
 * What to change so that an overlay VXLAN device holds exactly `want`: entries missing or wrong are
 * (re)placed, entries of endpoints no longer wanted are removed. Pure, for `network reload` and repair.
 */
export function diffRemoteEndpoints(vni: number, want: readonly RemoteEndpoint[], have: VxlanState): { add: KernelLines; remove: KernelLines } {
  const add: KernelLines[] = [];
  const remove: KernelLines[] = [];
  const wantMacs = new Map(want.map((w) => [w.mac.toLowerCase(), w]));
  const wantIps = new Map(want.map((w) => [w.ip, w]));
  for (const w of want) {
    const mac = w.mac.toLowerCase();
    const fdbOk = have.fdb.some((f) => f.mac === mac && f.dst === w.host);
    const neighOk = have.neigh.some((n) => n.ip === w.ip && n.mac === mac);
    if (!fdbOk || !neighOk) add.push(remoteEndpointLines(vni, w));
  }
  const dev = overlayVxlanName(vni);
  for (const f of have.fdb) if (!wantMacs.has(f.mac)) remove.push({ ip: [], bridge: [`fdb del ${f.mac} dev ${dev} self`] });
  for (const n of have.neigh) if (!wantIps.has(n.ip)) remove.push({ ip: [`neigh del ${n.ip} dev ${dev}`], bridge: [] });
  return { add: joinLines(...add), remove: joinLines(...remove) };
}
