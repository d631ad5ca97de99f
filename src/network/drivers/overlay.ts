import path from 'node:path';
import { allocate, keys, release, type LeaseId } from '../../cluster/index.js';
import { BadStateError, InvalidArgumentError, runTeardown } from '../../errors.js';
import { failpoint } from '../../util/failpoint.js';
import { ensureDir } from '../../util/fs.js';
import { parseCidr } from '../cidr.js';
import { deleteLink, hostNetnsPath, ipBatch, isMountPoint, linkExists, linkFacts, netnsBatch, removeNetns, writeSysctl, type NetnsSysctl } from '../hostnet.js';
import type { ClusterMember, DriverContext, NetworkDriver, NetworkRecord } from '../types.js';
import {
  applyLines, joinLines, linkMac, overlayBridgeLines, overlayBridgeName, overlayMtu, overlayPortLines, overlayVxlanLines, overlayVxlanName, parseVni,
  readVxlanState, diffRemoteEndpoints, VXLAN_PORT, type OverlayHostSpec,
} from '../vxlan.js';
import { bridgeRules, type BridgeOptions } from './bridge.js';
import { endpointAddressLines, readInt, refuseUnknown } from './options.js';
import { clusterOf, networkPeers, publishEndpoint, remoteEndpoints, withdrawEndpoint } from '../global.js';

/**
 * Docker's overlay driver, without swarm: a network every host of the cluster shares, its record, VNI,
 * addresses and endpoints in the cluster store. On each host that has a container on it, a netns of the
 * network's own (Docker's `1-<id>` sandbox; here `<netns folder>/.overlay/<network id>`) holds a bridge
 * `br0` with the gateway (the same address on every host) and the VXLAN device (vxlan.ts: no learning, no
 * flooding; each remote endpoint is an FDB and a neighbour entry made from what its host registered).
 * The VXLAN device is made in the host's netns and then moved in, so its UDP socket stays on the host's
 * underlay. Containers' veths go into `br0`. With br_netfilter off in that netns (its sysctls are per netns,
 * and that netns is Berth's), bridged overlay traffic never walks the host's iptables and conntrack: that
 * walk cost ~30% of the overlay's throughput (issue 17's benchmark).
 *
 * Egress and published ports: Docker gives each container a second interface on `docker_gwbridge`. Berth
 * routes instead, which is as isolated and keeps one interface per container: the overlay netns has one
 * veth to the host, its host end named as a bridge network's bridge (`driverOptions.bridge`, berth<id>),
 * the overlay netns's default route out through it and the host's route to the subnet in through it (both
 * ends answer ARP for what they route: proxy_arp, unnumbered). The host's firewall treats that veth exactly
 * as a bridge network's bridge (bridgeRules: masquerade out, DNAT for -p, the isolation chains, DROP of
 * anything else coming in), so overlays stay isolated from each other and from the host's other bridges,
 * and traffic between two containers of one overlay never leaves its netns. An `--internal` overlay gets
 * no veth at all: nothing routes in or out. The name server runs in the overlay netns, on the gateway.
 */
export interface OverlayOptions extends BridgeOptions {
  vni: number;
  /** set with -o com.docker.network.driver.mtu; otherwise each host's underlay MTU minus VXLAN's 50 bytes */
  mtuGiven: boolean;
}

/** The bridge in the overlay's netns, and that netns's end of the veth to the host. */
const BR = 'br0';
const GW = 'gw0';

const VNI = 'com.docker.network.driver.overlay.vxlanid_list';
const MTU = 'com.docker.network.driver.mtu';
const ENCRYPTED = 'encrypted';

type Net = NetworkRecord<OverlayOptions>;

export const overlayDriver: NetworkDriver<OverlayOptions> = {
  kind: 'overlay',
  mode: 'private',
  needsSubnet: true,
  supportsDns: true,
  scope: 'global',

  parseOptions(raw, net) {
    if (raw[ENCRYPTED] !== undefined) {
      throw new InvalidArgumentError('opt', 'encrypted overlay networks are not supported yet (Docker encrypts with IPsec between swarm nodes)',
        'leave -o encrypted out; traffic between hosts then crosses the underlay in clear, as VXLAN does');
    }
    refuseUnknown(raw, [VNI, MTU], 'overlay');
    // The VNI is settled at create (cluster-wide, see networks.ts); 0 until then.
    const vni = raw[VNI] !== undefined ? parseVni(raw[VNI]!, VNI) : 0;
    return {
      bridge: overlayBridgeName(net.id), icc: true, masquerade: true, vni,
      mtu: readInt(raw, MTU, 1450, 68, 65535), mtuGiven: raw[MTU] !== undefined,
    };
  },

  addresses(net: Net, ctx: DriverContext) {
    return {
      async allocate(owner, wanted) {
        const cluster = clusterOf(ctx, `network ${net.name}`);
        const [store, self] = await Promise.all([cluster.store(), cluster.self()]);
        return allocate(store, net.id, net.ipam!.subnet, net.ipam!.gateway, owner, { lease: self.lease, ...(wanted ? { preferred: wanted } : {}) });
      },
      async release(owner, ip) {
        // Without the store (a reset run with no cluster flags) the address stays under this host's lease,
        // which goes, and the address with it, once nothing renews it.
        if (!ctx.cluster) return;
        await release(await ctx.cluster.store(), net.id, ip, owner);
      },
    };
  },

  /**
   * This host's overlay netns, bridge, VXLAN device and veth to the host, made at its first endpoint on
   * the network (networks.ts `ensure`, under the network's lock). Each part is made only if missing, so a
   * run killed half-way (failpoint network.overlay.before-move), a device deleted by hand or `network
   * reload` is finished by the next call; a half-made set with no endpoint left goes with deleteNetwork.
   */
  async createNetwork(net: Net, ctx?: DriverContext) {
    const cluster = clusterOf(ctx, `network ${net.name}`);
    const ns = overlayNetnsPath(ctx!, net);
    const { bridge, vni } = net.driverOptions;
    const self = await cluster.self();
    // Per host: the underlay's MTU less VXLAN's headers (hosts may differ), unless the network sets one.
    const mtu = await overlayMtu(self.address, net.driverOptions.mtuGiven ? net.driverOptions.mtu : undefined);
    net.driverOptions.mtu = mtu;
    const prefix = parseCidr(net.ipam!.subnet, 'subnet').prefix;
    const spec: OverlayHostSpec = { networkId: net.id, vni, gateway: `${net.ipam!.gateway}/${prefix}`, local: self.address, mtu, dstport: VXLAN_PORT, bridge: BR };
    if (!isMountPoint(ns)) {
      await ensureDir(path.dirname(ns));
      // The netns is new: whatever of it a killed run made (its VXLAN device too) went with the old one.
      await netnsBatch(ns, ['link set lo up', ...overlayBridgeLines(spec)], { create: true, before: OVERLAY_NETNS_SYSCTLS });
    }
    const vx = overlayVxlanName(vni);
    if ((await linkMac(vx, ns)) === undefined) {
      // Left in the host's netns by a run killed before the move: ours (its alias names the network), made again.
      const stray = await linkFacts(vx);
      if (stray && stray.alias !== `berth:${net.id}`) {
        throw new BadStateError(`VXLAN device ${vx} of network ${net.name} exists in the host's netns but was not made by it (${stray.alias || 'no owner'})`, `delete that device, or give the network another VXLAN id`);
      }
      if (stray) await deleteLink(vx);
      await ipBatch(overlayVxlanLines(spec), { side: 'outside' });
      failpoint('network.overlay.before-move');
      await ipBatch([`link set dev ${vx} netns ${ns}`], { side: 'outside' });
      await ipBatch(overlayPortLines(spec), { side: 'inside', netns: ns });
    }
    if (!net.internal && !linkExists(bridge)) await makeHostLink(net, ns, mtu);
    await syncRemoteEndpoints(net, cluster, ns);
  },

  /** Removes what createNetwork made, each part checked by owner; every step runs (gone is done). */
  async deleteNetwork(net: Net, ctx?: DriverContext) {
    const vx = overlayVxlanName(net.driverOptions.vni);
    await runTeardown([
      async () => { if ((await linkFacts(net.driverOptions.bridge))?.alias === `berth:${net.id}`) await deleteLink(net.driverOptions.bridge); },
      async () => { if ((await linkFacts(vx))?.alias === `berth:${net.id}`) await deleteLink(vx); },
      // The netns takes the bridge, the VXLAN device and the containers' veth ends with it.
      async () => { if (ctx?.netnsDir) await removeNetns(overlayNetnsPath(ctx, net)); },
    ]);
  },

  async join(net: Net, ep, sandbox, ctx) {
    const cluster = clusterOf(ctx, `network ${net.name}`);
    const { mtu } = net.driverOptions;
    const port = ep.hostInterface!;
    const ns = overlayNetnsPath(ctx!, net);
    // Made from inside the container's netns with its peer sent straight into the overlay's.
    sandbox.inside([`link add ${ep.interface} mtu ${mtu} address ${ep.mac} type veth peer name ${port} mtu ${mtu} netns ${ns}`, ...endpointAddressLines(ep)]);
    sandbox.within(ns, [`link set ${port} master ${BR} up`]);
    await publishEndpoint(cluster, net, ep, sandbox);
    return { hostInterface: port };
  },

  async leave(net: Net, ep, sandbox, ctx) {
    // A veth dies with its netns (either end's); the overlay's end is deleted only when the container's netns stays.
    const ns = ctx?.netnsDir ? overlayNetnsPath(ctx, net) : undefined;
    if (ep.hostInterface && !sandbox.sandboxGoing && ns && isMountPoint(ns)) {
      await applyLines({ ip: [`link del ${ep.hostInterface}`], bridge: [] }, { netns: ns, forgiving: true });
    }
    await withdrawEndpoint(ctx, net, ep, sandbox);
  },

  /** The other hosts' endpoints as this host's VXLAN entries (the agent, on every change). */
  refresh(net: Net, ctx: DriverContext) {
    return syncRemoteEndpoints(net, clusterOf(ctx, `network ${net.name}`), overlayNetnsPath(ctx, net));
  },

  nameServerNetns(net: Net, ctx: DriverContext) {
    return overlayNetnsPath(ctx, net);
  },

  /** This host's addresses on the network, back under the new lease (its endpoints are put back by the caller). */
  async republish(net: Net, ctx: DriverContext, host: { lease: LeaseId; endpoints: readonly { containerId: string; ip: string }[] }) {
    const store = await clusterOf(ctx, `network ${net.name}`).store();
    for (const ep of host.endpoints) await store.put(keys.address(net.id, ep.ip), ep.containerId, { lease: host.lease });
  },

  /** The hosts with an endpoint on the network (Docker's Peers). */
  peers(net: Net, ctx: DriverContext) {
    return networkPeers(clusterOf(ctx, `network ${net.name}`), net.id);
  },

  firewall(net: Net, endpoints, chains) {
    return linkExists(net.driverOptions.bridge) ? bridgeRules(net as unknown as NetworkRecord<BridgeOptions>, endpoints, chains) : {};
  },
};

/** Where a network's overlay netns is on this host. */
export function overlayNetnsPath(ctx: Pick<DriverContext, 'netnsDir'>, net: Pick<NetworkRecord, 'id' | 'name'>): string {
  if (!ctx.netnsDir) throw new BadStateError(`network ${net.name}: no netns folder was given to the overlay driver`, 'this is a bug of Berth: report it');
  return path.join(ctx.netnsDir, OVERLAY_NETNS_DIR, net.id);
}

/** A dot folder: the netns folder's sweeps (sandbox.ts reconcile) pass over it. */
export const OVERLAY_NETNS_DIR = '.overlay';

/**
 * br_netfilter off (the point of the netns: see above), routing on between br0 and gw0, and proxy ARP
 * answered at once (the kernel delays proxy replies by up to 0.8 s otherwise) on links made afterwards.
 */
const OVERLAY_NETNS_SYSCTLS: readonly NetnsSysctl[] = [
  ['net.bridge.bridge-nf-call-iptables', '0'], ['net.bridge.bridge-nf-call-ip6tables', '0'], ['net.bridge.bridge-nf-call-arptables', '0'],
  ['net.ipv4.ip_forward', '1'], ['net.ipv4.neigh.default.proxy_delay', '0'],
];

/**
 * The veth between the overlay netns and the host, unnumbered: each side routes to the other through it
 * and answers ARP for what it routes (proxy_arp), so no address of either side is spent on it and no two
 * overlays' links ever clash. The host end carries the owner alias and is what the firewall names.
 */
async function makeHostLink(net: Net, ns: string, mtu: number): Promise<void> {
  const { bridge } = net.driverOptions;
  const lines = [
    `link add ${GW} mtu ${mtu} type veth peer name ${bridge} mtu ${mtu} netns ${hostNetnsPath()}`,
    `link set ${GW} up`,
    `route replace default dev ${GW}`,
  ];
  const make = () => netnsBatch(ns, lines, { after: [[`net.ipv4.conf.${GW}.proxy_arp`, '1']] });
  await make().catch(async (err: unknown) => {
    // The netns end of a pair whose host end was deleted by hand cannot be: it went with its peer. Any
    // other gw0 there is a half-made one of a killed run: replaced.
    if (!/File exists/.test(String((err as Error).message))) throw err;
    await applyLines({ ip: [`link del ${GW}`], bridge: [] }, { netns: ns, forgiving: true });
    await make();
  });
  await ipBatch([`link set dev ${bridge} alias berth:${net.id}`, `link set ${bridge} up`, `route replace ${net.ipam!.subnet} dev ${bridge}`], { side: 'outside' });
  await writeSysctl(`net.ipv4.conf.${bridge}.proxy_arp`, '1');
  await writeSysctl(`net.ipv4.neigh.${bridge}.proxy_delay`, '0');
  // 127.0.0.1:PORT → container (MACHINE-NOTES.md), as on a bridge network; bridgeRules drops the rest of 127/8.
  await writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, '1');
  await writeSysctl('net.ipv4.ip_forward', '1');
}

/**
 * Brings this host's VXLAN FDB and neighbour entries of `net` (in its overlay netns `ns`) to what the
 * store holds: entries of endpoints that went are removed, new ones added. Idempotent; the cluster agent
 * runs it on every change it sees.
 */
export async function syncRemoteEndpoints(net: Net, cluster: ClusterMember, ns: string): Promise<void> {
  const dev = overlayVxlanName(net.driverOptions.vni);
  if (!isMountPoint(ns)) return;
  const have = await readVxlanState(dev, ns);
  if (!have) return;
  const want = await remoteEndpoints(net, cluster);
  const { add, remove } = diffRemoteEndpoints(net.driverOptions.vni, want, have);
  await applyLines(joinLines(remove), { forgiving: true, netns: ns });
  await applyLines(add, { netns: ns });
}
