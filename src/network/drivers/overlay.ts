import { allocate, keys, release, type LeaseId } from '../../cluster/index.js';
import { InvalidArgumentError } from '../../errors.js';
import { parseCidr } from '../cidr.js';
import { deleteLink, linkExists, linkFacts, writeSysctl } from '../hostnet.js';
import type { ClusterMember, DriverContext, NetworkDriver, NetworkRecord } from '../types.js';
import {
  applyLines, joinLines, overlayBridgeName, overlayMtu, overlayNetworkLines, overlayNetworkTeardown, overlayVxlanName, parseVni,
  readVxlanState, diffRemoteEndpoints, VXLAN_PORT,
} from '../vxlan.js';
import { bridgeDriver, bridgeRules, type BridgeOptions } from './bridge.js';
import { readInt, refuseUnknown } from './options.js';
import { clusterOf, endpointKey, networkPeers, registerEndpoint, remoteEndpoints } from '../global.js';

/**
 * Docker's overlay driver, without swarm: a network every host of the cluster shares, its record, VNI,
 * addresses and endpoints in the cluster store. On each host that has a container on it: a bridge holding
 * the gateway (the same address on every host; traffic out of the network is masqueraded by the host, as
 * a bridge network's) and a VXLAN device in that bridge (vxlan.ts: no learning, no flooding; each remote
 * endpoint is an FDB and a neighbour entry made from what its host registered). Containers join the bridge
 * with a veth, as on a bridge network, so the bridge driver does that part and writes the same rules.
 */
export interface OverlayOptions extends BridgeOptions {
  vni: number;
  /** set with -o com.docker.network.driver.mtu; otherwise each host's underlay MTU minus VXLAN's 50 bytes */
  mtuGiven: boolean;
}

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

  /** This host's bridge and VXLAN device, made at its first endpoint on the network (networks.ts `ensure`). */
  async createNetwork(net: Net, ctx?: DriverContext) {
    const cluster = clusterOf(ctx, `network ${net.name}`);
    const { bridge, vni } = net.driverOptions;
    const self = await cluster.self();
    // Per host: the underlay's MTU less VXLAN's headers (hosts may differ), unless the network sets one.
    const mtu = await overlayMtu(self.address, net.driverOptions.mtuGiven ? net.driverOptions.mtu : undefined);
    net.driverOptions.mtu = mtu;
    const prefix = parseCidr(net.ipam!.subnet, 'subnet').prefix;
    const lines = overlayNetworkLines({ networkId: net.id, vni, gateway: `${net.ipam!.gateway}/${prefix}`, local: self.address, mtu, dstport: VXLAN_PORT });
    const vx = overlayVxlanName(vni);
    if (!(await linkFacts(bridge))) await applyLines(lines);
    // The bridge without its VXLAN port (deleted by hand, or a crash between the two): only the port is made.
    else if (!linkExists(vx)) await applyLines({ ip: lines.ip.filter((l) => l.includes(` ${vx} `) || l.endsWith(` ${vx}`)), bridge: [] });
    await writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, '1');
    if (!net.internal) await writeSysctl('net.ipv4.ip_forward', '1');
    await syncRemoteEndpoints(net, cluster);
  },

  async deleteNetwork(net: Net) {
    const dev = await linkFacts(net.driverOptions.bridge);
    if (!dev) return;
    if (dev.alias !== `berth:${net.id}`) return;
    await applyLines(overlayNetworkTeardown(net.id, net.driverOptions.vni), { forgiving: true });
    await deleteLink(net.driverOptions.bridge).catch(() => undefined);
  },

  async join(net: Net, ep, sandbox, ctx) {
    const cluster = clusterOf(ctx, `network ${net.name}`);
    const attachment = await bridgeDriver.join(net as unknown as NetworkRecord<BridgeOptions>, ep, sandbox);
    const [store, self] = await Promise.all([cluster.store(), cluster.self()]);
    await registerEndpoint(store, net, { hostId: self.hostId, host: self.address, containerId: sandbox.containerId, name: sandbox.name, aliases: ep.aliases, ip: ep.ipv4!, mac: ep.mac }, self.lease);
    return attachment;
  },

  async leave(net: Net, ep, sandbox, ctx) {
    await bridgeDriver.leave(net as unknown as NetworkRecord<BridgeOptions>, ep, sandbox);
    if (!ctx?.cluster) return;
    await (await ctx.cluster.store()).delete(endpointKey(net, sandbox));
  },

  /** The other hosts' endpoints as this host's VXLAN entries (the agent, on every change). */
  refresh(net: Net, ctx: DriverContext) {
    return syncRemoteEndpoints(net, clusterOf(ctx, `network ${net.name}`));
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

/**
 * Brings this host's VXLAN FDB and neighbour entries of `net` to what the store holds: entries of endpoints
 * that went are removed, new ones added. Idempotent; the cluster agent runs it on every change it sees.
 */
export async function syncRemoteEndpoints(net: Net, cluster: ClusterMember): Promise<void> {
  const dev = overlayVxlanName(net.driverOptions.vni);
  const have = await readVxlanState(dev);
  if (!have) return;
  const want = await remoteEndpoints(net, cluster);
  const { add, remove } = diffRemoteEndpoints(net.driverOptions.vni, want, have);
  await applyLines(joinLines(remove), { forgiving: true });
  await applyLines(add);
}

