import { randomBytes } from 'node:crypto';
import {
  acquireSubnet, checkFlannelConfig, ensureFlannelConfig, keys, listSubnets, releaseSubnet, subnetCount, type ClusterStore, type FlannelConfig, type LeaseId,
} from '../../cluster/index.js';
import { BadStateError, InvalidArgumentError, runTeardown } from '../../errors.js';
import { formatCidr, formatIpv4, maskOf, parseCidr, parseIpv4, within, type Ipv4Net } from '../cidr.js';
import { comment } from '../firewall.js';
import { deleteLink, linkAddresses, linkExists, linkFacts, writeSysctl } from '../hostnet.js';
import type { ClusterMember, DriverContext, FirewallRules, NetworkDriver, NetworkRecord } from '../types.js';
import {
  applyLines, flannelRemoteLines, flannelVtepLines, flannelVxlanName, hostGwRouteLines, hostGwRouteRemoval, joinLines, linkMac, overlayBridgeName,
  overlayMtu, parseVni, readRoutes, readVxlanState, underlayOf, VXLAN_PORT, type FlannelRemote, type KernelLines, type VxlanState,
} from '../vxlan.js';
import { bridgeDriver, bridgeRules, type BridgeOptions } from './bridge.js';
import { clusterOf, publishEndpoint, withdrawEndpoint } from '../global.js';
import { readInt, refuseUnknown } from './options.js';

/**
 * flannel's scheme as a global-scope driver: the network's range and config live in the cluster store in
 * flannel's layout (keys.flannel, leases.ts); each host leases a subnet of it at its first container on the
 * network, under the HOST's lease (so it goes when the host dies, with no renewal of its own), and gives its
 * containers addresses of that subnet from a pool in its own root, on a local bridge whose gateway is the
 * subnet's first address. Other hosts' subnets are routed: by `vxlan` (flannel's L3 VXLAN: one device
 * `berthfl<VNI>`, a route via the remote subnet's .0 onlink, a neighbour entry .0 → the remote VTEP MAC and
 * an FDB entry MAC → the remote host) or by `host-gw` (a route via the other host, which must share the link).
 * Names cross hosts as on overlay networks: each endpoint is registered in the store (overlay.ts).
 */
export interface FlannelOptions extends BridgeOptions {
  vni: number;
  backend: Backend;
  subnetLen: number;
  mtuGiven: boolean;
}

type Backend = 'vxlan' | 'host-gw';
type Net = NetworkRecord<FlannelOptions>;

const BACKEND = 'backend';
const SUBNET_LEN = 'subnet-len';
const VNI = 'vni';
const MTU = 'com.docker.network.driver.mtu';

const prefixOf = (net: Net) => keys.flannel(net.id);
const owner = (net: Net) => `berth:${net.id}`;

/** flannel's network config for the record (Backend.VNI is the record's, settled when it was published). */
export function flannelConfigOf(net: Pick<Net, 'ipam' | 'driverOptions'>): FlannelConfig {
  const o = net.driverOptions;
  return {
    Network: net.ipam!.subnet, SubnetLen: o.subnetLen,
    Backend: o.backend === 'vxlan' ? { Type: 'vxlan', VNI: o.vni, Port: VXLAN_PORT } : { Type: 'host-gw' },
  };
}

export const flannelDriver: NetworkDriver<FlannelOptions> = {
  kind: 'flannel',
  mode: 'private',
  needsSubnet: true,
  supportsDns: true,
  scope: 'global',

  parseOptions(raw, net) {
    refuseUnknown(raw, [BACKEND, SUBNET_LEN, VNI, MTU], 'flannel');
    if (net.internal) {
      throw new InvalidArgumentError('internal', 'a flannel network cannot be --internal: its hosts reach each other by routing out of their bridges', 'leave --internal out, or use an overlay network');
    }
    const backend = raw[BACKEND] ?? 'vxlan';
    if (backend !== 'vxlan' && backend !== 'host-gw') {
      throw new InvalidArgumentError('opt', `${BACKEND}=${backend} is not a flannel backend`, `use ${BACKEND}=vxlan (any underlay) or ${BACKEND}=host-gw (hosts on one link)`);
    }
    const lenText = raw[SUBNET_LEN];
    if (lenText !== undefined && !/^\d{1,2}$/.test(lenText)) throw new InvalidArgumentError(SUBNET_LEN, `${SUBNET_LEN}=${lenText} is not a prefix length`, 'e.g. -o subnet-len=24');
    // Known once the subnet is planned (networks.ts); checked here, before anything is published.
    let subnetLen = lenText !== undefined ? Number(lenText) : 0;
    if (net.subnet) {
      const cfg: FlannelConfig = { Network: net.subnet, ...(lenText !== undefined ? { SubnetLen: subnetLen } : {}) };
      subnetLen = checkFlannelConfig(cfg).subnetLen;
      const count = subnetCount(cfg);
      if (count < 2) {
        throw new InvalidArgumentError(SUBNET_LEN, `subnet ${net.subnet} with ${SUBNET_LEN}=${subnetLen} leaves room for ${count} host subnet${count === 1 ? '' : 's'} (flannel never hands out the first)`,
          `give a larger --subnet or a longer ${SUBNET_LEN}, so that at least 2 hosts get a subnet`);
      }
    }
    const vni = raw[VNI] !== undefined ? parseVni(raw[VNI]!, VNI) : 0;
    return {
      bridge: overlayBridgeName(net.id), icc: true,
      // Not the bridge driver's `-s subnet ! -o bridge`: traffic to other hosts' subnets is routed, not NATed (firewall below).
      masquerade: false,
      mtu: readInt(raw, MTU, 1450, 68, 65535), mtuGiven: raw[MTU] !== undefined, vni, backend, subnetLen,
    };
  },

  async published(net: Net, ctx: DriverContext) {
    const store = await clusterOf(ctx, `network ${net.name}`).store();
    await ensureFlannelConfig(store, prefixOf(net), flannelConfigOf(net));
  },

  addresses(net: Net, _ctx, local) {
    return {
      async allocate(owner, wanted) {
        const sub = await hostSubnet(net);
        if (!sub) throw new BadStateError(`network ${net.name} has no subnet on this host yet`, 'start the container again: its first container leases one');
        const spec = { subnet: formatCidr(sub.net), gateway: sub.gateway };
        const ip = await local(spec).allocate(owner, wanted);
        return { ip: typeof ip === 'string' ? ip : ip.ip, prefixLength: sub.net.prefix, gateway: sub.gateway };
      },
      async release(owner, ip) {
        await local(net.ipam!).release(owner, ip);
      },
    };
  },

  /** This host's subnet, bridge and (vxlan) VTEP, and its routes to the others, at its first endpoint (`ensure`). */
  async createNetwork(net: Net, ctx?: DriverContext) {
    const cluster = clusterOf(ctx ?? { defaultBridgeName: '' }, `network ${net.name}`);
    const o = net.driverOptions;
    const [store, self] = await Promise.all([cluster.store(), cluster.self()]);
    const mtu = o.backend === 'vxlan'
      ? await overlayMtu(self.address, o.mtuGiven ? o.mtu : undefined)
      : o.mtuGiven ? o.mtu : (await underlayOf(self.address)).mtu;
    o.mtu = mtu;
    const had = await hostSubnet(net);
    const lease = await leaseHostSubnet(net, store, self);
    if (had && formatCidr(had.net) !== lease) {
      throw new BadStateError(`network ${net.name}: this host's subnet ${formatCidr(had.net)} was leased to another host while this one was away (it now has ${lease})`,
        `remove this host's containers on ${net.name}, then start them again`);
    }
    const subnet = parseCidr(lease, 'subnet');
    const lines: KernelLines[] = [];
    if (!had) {
      const br = o.bridge;
      if (linkExists(br)) await deleteLink(br); // ours without its address: a create killed half-way
      lines.push({
        ip: [`link add ${br} mtu ${mtu} type bridge`, `link set dev ${br} alias ${owner(net)}`, `addr add ${formatIpv4(subnet.base + 1)}/${subnet.prefix} dev ${br}`, `link set ${br} up`],
        bridge: [],
      });
    }
    const dev = flannelVxlanName(o.vni);
    if (o.backend === 'vxlan' && !(await vtepHolds(dev, subnet))) {
      // A VTEP of another subnet (or none): made again with this host's MAC from the lease.
      if (linkExists(dev)) await deleteLink(dev);
      lines.push(flannelVtepLines({ vni: o.vni, subnet: lease, local: self.address, mtu, mac: await leasedVtepMac(net, store, self.address) }));
    }
    await applyLines(joinLines(...lines));
    await writeSysctl(`net.ipv4.conf.${o.bridge}.route_localnet`, '1');
    await writeSysctl('net.ipv4.ip_forward', '1');
    await syncFlannelRemotes(net, cluster);
  },

  /** This host leaves the network: devices, routes to the others, and its subnet lease (every step runs). */
  async deleteNetwork(net: Net, ctx?: DriverContext) {
    const o = net.driverOptions;
    const range = parseCidr(net.ipam!.subnet, 'subnet');
    await runTeardown([
      // The VTEP's routes, neighbours and FDB entries go with it.
      async () => { if (o.backend === 'vxlan') await deleteLink(flannelVxlanName(o.vni)); },
      async () => {
        if (o.backend !== 'host-gw') return;
        const ours = (await readRoutes()).filter((r) => inRange(r.subnet, range));
        await applyLines(joinLines(...ours.map((r) => hostGwRouteRemoval({ subnet: r.subnet, host: r.via }))), { forgiving: true });
      },
      async () => { if ((await linkFacts(o.bridge))?.alias === owner(net)) await deleteLink(o.bridge); },
      async () => {
        if (!ctx?.cluster) return;
        const [store, self] = await Promise.all([ctx.cluster.store(), ctx.cluster.identity()]);
        for (const l of (await listSubnets(store, prefixOf(net))).filter((s) => s.attrs.PublicIP === self.address)) {
          // No `lease` in what is released: the host's own lease holds its other keys too.
          await releaseSubnet(store, prefixOf(net), { subnet: l.subnet, attrs: l.attrs, modRevision: l.modRevision });
        }
      },
    ]);
  },

  async join(net: Net, ep, sandbox, ctx) {
    const cluster = clusterOf(ctx, `network ${net.name}`);
    const attachment = await bridgeDriver.join(net as unknown as NetworkRecord<BridgeOptions>, ep, sandbox);
    await publishEndpoint(cluster, net, ep, sandbox);
    return attachment;
  },

  async leave(net: Net, ep, sandbox, ctx) {
    await bridgeDriver.leave(net as unknown as NetworkRecord<BridgeOptions>, ep, sandbox);
    await withdrawEndpoint(ctx, net, ep, sandbox);
  },

  refresh(net: Net, ctx: DriverContext) {
    return syncFlannelRemotes(net, clusterOf(ctx, `network ${net.name}`));
  },

  async republish(net: Net, ctx: DriverContext, host: { address: string; lease: LeaseId }) {
    if (!(await hostSubnet(net))) return;
    await leaseHostSubnet(net, await clusterOf(ctx, `network ${net.name}`).store(), host);
  },

  /** Every host holding a subnet of the network, named as it registered (keys.host) when it did. */
  async peers(net: Net, ctx: DriverContext) {
    const store = await clusterOf(ctx, `network ${net.name}`).store();
    const names = new Map<string, string>();
    for (const kv of (await store.list(keys.hosts())).kvs) {
      try {
        const reg = JSON.parse(kv.value) as { address?: string; hostname?: string; id?: string };
        if (reg.address) names.set(reg.address, reg.hostname || reg.id || reg.address);
      } catch {
        // not a registration Berth wrote: the address names the host
      }
    }
    return (await listSubnets(store, prefixOf(net))).map((s) => ({ name: names.get(s.attrs.PublicIP) ?? s.attrs.PublicIP, ip: s.attrs.PublicIP, subnet: s.subnet }));
  },

  firewall(net: Net, endpoints, chains) {
    return linkExists(net.driverOptions.bridge) ? flannelRules(net, endpoints, chains) : {};
  },
};

/**
 * The bridge driver's rules with flannel's routing let through: traffic from the network's range (other
 * hosts' containers, routed here) may enter the bridge, which the bridge's rules otherwise refuse from
 * outside; containers of this host's other networks may not reach the range (ISOLATION-2 sees only traffic
 * that left some Berth bridge); traffic leaving the range is masqueraded (flannel's `-s net ! -d net`).
 */
export function flannelRules(net: Net, endpoints: Parameters<typeof bridgeRules>[1], chains: Parameters<typeof bridgeRules>[2]): FirewallRules {
  const r = bridgeRules(net as unknown as NetworkRecord<BridgeOptions>, endpoints, chains);
  const b = net.driverOptions.bridge;
  const range = net.ipam!.subnet;
  const tag = comment(`net:${net.id.slice(0, 12)}`);
  return {
    ...r,
    forward: [`-s ${range} ! -i ${b} -o ${b} ${tag} -j ACCEPT`, ...(r.forward ?? [])],
    isolation2: [...(r.isolation2 ?? []), `! -i ${b} -d ${range} ${tag} -j DROP`],
    postrouting: [...(r.postrouting ?? []), `-s ${range} ! -d ${range} ${tag} -j MASQUERADE`],
  };
}

function inRange(subnet: string, range: Ipv4Net): boolean {
  try {
    return within(parseCidr(subnet.includes('/') ? subnet : `${subnet}/32`, 'subnet'), range);
  } catch {
    return false;
  }
}

/** This host's subnet of `net`, as its bridge holds it (the gateway, the subnet's first address). */
async function hostSubnet(net: Net): Promise<{ net: Ipv4Net; gateway: string } | undefined> {
  if ((await linkFacts(net.driverOptions.bridge))?.alias !== owner(net)) return undefined;
  const range = parseCidr(net.ipam!.subnet, 'subnet');
  for (const a of await linkAddresses(net.driverOptions.bridge)) {
    const [ip, bits] = a.split('/');
    const n = parseIpv4(ip ?? '');
    if (n === undefined) continue;
    const sub = { base: (n & maskOf(Number(bits))) >>> 0, prefix: Number(bits) };
    if (within(sub, range)) return { net: sub, gateway: ip! };
  }
  return undefined;
}

async function vtepHolds(dev: string, subnet: Ipv4Net): Promise<boolean> {
  if (!linkExists(dev)) return false;
  return (await linkAddresses(dev)).includes(`${formatIpv4(subnet.base)}/32`);
}

/**
 * Leases (or re-puts) this host's subnet under the host's lease, the one its bridge holds first. For vxlan
 * the lease carries the VTEP's MAC: the device's if it exists, else the one already leased, else a new one.
 */
async function leaseHostSubnet(net: Net, store: ClusterStore, host: { address: string; lease: LeaseId }): Promise<string> {
  const o = net.driverOptions;
  const had = await hostSubnet(net);
  const data = o.backend === 'vxlan'
    ? { BackendType: 'vxlan', BackendData: { VtepMAC: (await linkMac(flannelVxlanName(o.vni))) ?? (await leasedVtepMac(net, store, host.address)), VNI: o.vni } }
    : { BackendType: 'host-gw' };
  const l = await acquireSubnet(store, prefixOf(net), host.address, data, { lease: host.lease, ...(had ? { preferred: formatCidr(had.net) } : {}) });
  return l.subnet;
}

async function leasedVtepMac(net: Net, store: ClusterStore, address: string): Promise<string> {
  const mine = (await listSubnets(store, prefixOf(net))).find((s) => s.attrs.PublicIP === address);
  const mac = mine?.attrs.BackendData?.['VtepMAC'];
  // Locally administered unicast, as the kernel's own random MACs.
  return typeof mac === 'string' ? mac : ['02', ...[...randomBytes(5)].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** The other hosts' subnets of `net` as the store holds them now (entries that do not parse are skipped). */
async function remoteSubnets(net: Net, cluster: ClusterMember): Promise<FlannelRemote[]> {
  const [store, self] = await Promise.all([cluster.store(), cluster.identity()]);
  const range = parseCidr(net.ipam!.subnet, 'subnet');
  const out: FlannelRemote[] = [];
  for (const s of await listSubnets(store, prefixOf(net))) {
    if (s.attrs.PublicIP === self.address || s.attrs.BackendType !== net.driverOptions.backend || !inRange(s.subnet, range)) continue;
    if (parseIpv4(s.attrs.PublicIP) === undefined) continue;
    const mac = s.attrs.BackendData?.['VtepMAC'];
    out.push({ subnet: s.subnet, host: s.attrs.PublicIP, vtepMac: typeof mac === 'string' ? mac.toLowerCase() : '' });
  }
  return out;
}

/**
 * Brings this host's routes (and, for vxlan, neighbour and FDB entries) of `net` to the other hosts'
 * subnets in the store: missing or wrong ones (re)placed, those of hosts that left removed. Idempotent.
 */
export async function syncFlannelRemotes(net: Net, cluster: ClusterMember): Promise<void> {
  const o = net.driverOptions;
  const range = parseCidr(net.ipam!.subnet, 'subnet');
  const want = await remoteSubnets(net, cluster);
  let diff: { add: KernelLines; remove: KernelLines };
  if (o.backend === 'vxlan') {
    const have = await readVxlanState(flannelVxlanName(o.vni));
    if (!have) return;
    diff = diffFlannelVxlan(o.vni, want.filter((w) => w.vtepMac), have);
  } else {
    if (!linkExists(o.bridge)) return;
    diff = diffHostGw(want, (await readRoutes()).filter((r) => inRange(r.subnet, range)));
  }
  await applyLines(diff.remove, { forgiving: true });
  try {
    await applyLines(diff.add);
  } catch (err) {
    if (o.backend !== 'host-gw' || !/Nexthop has invalid gateway|Network is unreachable/i.test(String((err as { stderr?: string }).stderr ?? (err as Error).message))) throw err;
    throw new BadStateError(`network ${net.name}: another host's address is not on a link of this host, which host-gw routes need`,
      'put the hosts on one link, or create the network with -o backend=vxlan', { cause: err });
  }
}

const subnetBase = (subnet: string) => formatIpv4(parseCidr(subnet, 'subnet').base);

/** What to change so that a flannel VTEP routes exactly the `want` subnets. Pure. */
export function diffFlannelVxlan(vni: number, want: readonly FlannelRemote[], have: VxlanState): { add: KernelLines; remove: KernelLines } {
  const dev = flannelVxlanName(vni);
  const add: KernelLines[] = [];
  for (const w of want) {
    const gw = subnetBase(w.subnet);
    const ok = have.routes.some((r) => r.subnet === w.subnet && r.via === gw)
      && have.neigh.some((n) => n.ip === gw && n.mac === w.vtepMac)
      && have.fdb.some((f) => f.mac === w.vtepMac && f.dst === w.host);
    if (!ok) add.push(flannelRemoteLines(vni, w));
  }
  const subnets = new Set(want.map((w) => w.subnet));
  const gws = new Set(want.map((w) => subnetBase(w.subnet)));
  const macs = new Set(want.map((w) => w.vtepMac));
  const remove: KernelLines = {
    ip: [
      ...have.routes.filter((r) => !subnets.has(r.subnet)).map((r) => `route del ${r.subnet} dev ${dev}`),
      ...have.neigh.filter((n) => !gws.has(n.ip)).map((n) => `neigh del ${n.ip} dev ${dev}`),
    ],
    bridge: have.fdb.filter((f) => !macs.has(f.mac)).map((f) => `fdb del ${f.mac} dev ${dev} self`),
  };
  return { add: joinLines(...add), remove };
}

/** What to change so that the host-gw routes are exactly the `want` subnets, each via its host. Pure. */
export function diffHostGw(want: readonly { subnet: string; host: string }[], have: readonly { subnet: string; via: string }[]): { add: KernelLines; remove: KernelLines } {
  const add = want.filter((w) => !have.some((h) => h.subnet === w.subnet && h.via === w.host)).map((w) => hostGwRouteLines(w));
  const remove = have.filter((h) => !want.some((w) => w.subnet === h.subnet && w.host === h.via)).map((h) => hostGwRouteRemoval({ subnet: h.subnet, host: h.via }));
  return { add: joinLines(...add), remove: joinLines(...remove) };
}
