import { createHash } from 'node:crypto';
import { BadStateError, InvalidArgumentError } from '../../errors.js';
import { parseCidr } from '../cidr.js';
import { parseCidr6 } from '../cidr6.js';
import { comment } from '../firewall.js';
import { bridgeMembers, deleteAddress, deleteLink, ipBatch, ipv6DisabledForNewLinks, linkAddresses, linkExists, linkFacts, writeSysctl } from '../hostnet.js';
import type { ChainNames, FirewallEndpoint, FirewallRules, NetworkDriver, NetworkRecord } from '../types.js';
import { endpointAddressLines, readBool, readIfName, readInt, refuseUnknown } from './options.js';

export interface BridgeOptions {
  /** the Linux bridge: berth* when Berth creates it; any name when it adopts an existing bridge */
  bridge: string;
  icc: boolean;
  masquerade: boolean;
  mtu: number;
}

const NAME = 'com.docker.network.bridge.name';
const ICC = 'com.docker.network.bridge.enable_icc';
const MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const MTU = 'com.docker.network.driver.mtu';

type Net = NetworkRecord<BridgeOptions>;

/**
 * The ifalias Berth writes on every bridge it creates. The kernel object then names its owner, so a
 * second root (which cannot read this root's records) refuses it instead of adopting it, and a delete
 * can check that the bridge of this name is still the one this network made (a reboot frees the name).
 */
const owner = (net: Net) => `berth:${net.id}`;

/**
 * The bridge's own MAC, fixed from the network id. Left to the kernel, a bridge takes the lowest MAC of
 * its ports and changes it when that port goes: every other container's ARP entry for the gateway then
 * points at nothing until it expires (replies to the host, published ports, egress stall for ~30 s).
 * Docker sets a MAC on its bridges for the same reason. Locally administered (02:), unicast.
 */
export const bridgeMac = (net: Pick<Net, 'id'>) => `02:${createHash('sha256').update(net.id).digest('hex').slice(0, 10).match(/../g)!.join(':')}`;

/** The gateway addresses the network puts on its bridge, as `addr/prefix`. */
function gatewayAddresses(net: Net): string[] {
  const out = [`${net.ipam!.gateway}/${parseCidr(net.ipam!.subnet, 'subnet').prefix}`];
  if (net.ipam6) out.push(`${net.ipam6.gateway}/${parseCidr6(net.ipam6.subnet, 'subnet').prefix}`);
  return out;
}

/** A Linux bridge per network, a veth per endpoint, NAT and filtering in Berth's chains. */
export const bridgeDriver: NetworkDriver<BridgeOptions> = {
  kind: 'bridge',
  mode: 'private',
  needsSubnet: true,
  supportsDns: true,

  parseOptions(raw, net, ctx) {
    refuseUnknown(raw, [NAME, ICC, MASQ, MTU], 'bridge');
    const bridge = raw[NAME] !== undefined ? readIfName(raw[NAME], NAME) : net.name === 'bridge' ? ctx.defaultBridgeName : `berth${net.id.slice(0, 10)}`;
    return { bridge, icc: readBool(raw, ICC, true), masquerade: readBool(raw, MASQ, true), mtu: readInt(raw, MTU, 1500, 68, 65535) };
  },

  /**
   * Docker adopts an existing bridge named with com.docker.network.bridge.name and never deletes it; so
   * does Berth, except a bridge another Berth network made (another root's: this root's own names are
   * checked against its records), which would lose its containers' network when either side removed it.
   * The record keeps which gateway addresses Berth added, the only things it removes from that bridge.
   */
  async adopt(net: Net) {
    const { bridge } = net.driverOptions;
    const dev = await linkFacts(bridge);
    if (!dev) {
      if (!bridge.startsWith('berth')) throw new InvalidArgumentError('opt', `${NAME}=${bridge}: no such bridge, and Berth only creates bridges named berth*`, 'name an existing bridge, or a new name starting with berth');
      return undefined;
    }
    if (!dev.isBridge) throw new InvalidArgumentError('opt', `${NAME}=${bridge}: ${bridge} exists and is not a bridge`, 'name an existing bridge, or a name no link uses');
    if (dev.alias.startsWith('berth:')) {
      throw new InvalidArgumentError('opt', `${NAME}=${bridge}: the bridge belongs to another Berth network (${dev.alias.slice(6, 18)}), perhaps of another root`, 'pick another bridge name');
    }
    const present = await linkAddresses(bridge);
    return { addresses: gatewayAddresses(net).filter((a) => !present.includes(a)) };
  },

  async createNetwork(net: Net) {
    const { bridge, mtu } = net.driverOptions;
    const v6 = net.ipam6;
    const dev = await linkFacts(bridge);
    if (net.adopted) {
      if (!dev) throw new BadStateError(`bridge ${bridge} of network ${net.name} is gone`, 'create the bridge again, or remove the network');
      // replace: idempotent, for a repeat after a crash.
      await ipBatch(net.adopted.addresses.map((a) => `addr replace ${a} dev ${bridge}${a.includes(':') ? ' nodad' : ''}`), { side: 'outside' });
    } else if (dev && dev.alias !== owner(net) && net.builtin && dev.alias.startsWith('berth:') && !(await bridgeMembers(bridge)).length) {
      // The default bridge of a root deleted without `system reset` (its name comes from the root's path,
      // so a new root there finds it): nothing is on it, so it is made again for this root's network.
      await deleteLink(bridge);
      await bridgeDriver.createNetwork(net);
      return;
    } else if (dev && dev.alias !== owner(net)) {
      // Bridges made before Berth wrote owners carry no alias: a berth* one is taken as this network's.
      if (dev.alias || !bridge.startsWith('berth')) {
        throw new BadStateError(`bridge ${bridge} of network ${net.name} exists but was not made by it (${dev.alias || 'no owner'})`, 'remove that bridge, or the network');
      }
      await ipBatch([`link set dev ${bridge} alias ${owner(net)}`], { side: 'outside' });
    } else if (!dev) {
      const [addr4, addr6] = gatewayAddresses(net);
      const addresses = [`addr add ${addr4} dev ${bridge}`];
      // nodad: the gateway must answer at once; nobody else on a fresh bridge can hold its address.
      if (addr6) addresses.push(`addr add ${addr6} dev ${bridge} nodad`);
      const make = [`link add ${bridge} mtu ${mtu} address ${bridgeMac(net)} type bridge`, `link set dev ${bridge} alias ${owner(net)}`];
      if (v6 && ipv6DisabledForNewLinks()) {
        await ipBatch(make, { side: 'outside' });
        await writeSysctl(`net.ipv6.conf.${bridge}.disable_ipv6`, '0');
        await ipBatch([...addresses, `link set ${bridge} up`], { side: 'outside' });
      } else {
        await ipBatch([...make, ...addresses, `link set ${bridge} up`], { side: 'outside' });
      }
    }
    // 127.0.0.1:PORT → container needs local-source routing onto the bridge (MACHINE-NOTES.md). It also
    // lets the host accept packets from the bridge addressed to 127.0.0.0/8: see the raw rule below.
    await writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, '1');
    // Routing out of (and hairpinning back into) the bridge: Docker sets this too and leaves it set.
    if (!net.internal) await writeSysctl('net.ipv4.ip_forward', '1');
    // The same for IPv6, only for a routed IPv6 network, as Docker. Left set too. Note that with
    // forwarding on, the host stops accepting router advertisements on interfaces with accept_ra=1.
    if (!net.internal && v6) await writeSysctl('net.ipv6.conf.all.forwarding', '1');
  },

  /** Deletes only what this network made: its bridge (checked by owner), or its addresses on an adopted one. */
  async deleteNetwork(net: Net) {
    const { bridge } = net.driverOptions;
    if (net.adopted) {
      for (const a of net.adopted.addresses) await deleteAddress(bridge, a);
      return;
    }
    const dev = await linkFacts(bridge);
    if (dev && dev.alias === owner(net)) await deleteLink(bridge);
  },

  async join(net: Net, ep, sandbox) {
    const { bridge, mtu } = net.driverOptions;
    const host = ep.hostInterface!;
    // The veth is made from inside with its peer sent out, so creating the netns, lo and eth0 is one process.
    sandbox.inside([
      `link add ${ep.interface} mtu ${mtu} address ${ep.mac} type veth peer name ${host} mtu ${mtu} netns ${sandbox.hostNetnsPath}`,
      ...endpointAddressLines(ep),
    ]);
    // Hairpin lets a container reach itself through a published port.
    sandbox.outside([`link set ${host} master ${bridge} up`, `link set dev ${host} type bridge_slave hairpin on`]);
    return { hostInterface: host };
  },

  async leave(_net, ep, sandbox) {
    // A veth dies with its netns; the kernel then removes the host end in the background.
    if (ep.hostInterface && !sandbox.sandboxGoing) await deleteLink(ep.hostInterface);
  },

  // Rules only for a bridge that exists (not yet made, or deleted by a network rm): with no bridge left,
  // Berth's chains go too.
  firewall(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
    return linkExists(net.driverOptions.bridge) ? bridgeRules(net, endpoints, chains) : {};
  },

  firewall6(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
    return linkExists(net.driverOptions.bridge) ? bridgeRules6(net, endpoints, chains) : {};
  },
};

/** Docker's bridge rules, in Berth's chains. Pure, for tests. */
export function bridgeRules(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
  const b = net.driverOptions.bridge;
  const ports: PortRules = { ports: [], dnat: [], postrouting: [] };
  for (const ep of net.internal ? [] : endpoints) {
    for (const p of ep.ports.filter((x) => !x.hostIp.includes(':'))) {
      const who = comment(ep.containerId);
      const dst = p.hostIp === '0.0.0.0' ? '' : `-d ${p.hostIp}/32 `;
      // Only what a DNAT rule sent here: a neighbour routing the subnet through this host must not
      // reach the container port directly (a port published on 127.0.0.1 is not published to it).
      ports.ports.push(`-d ${ep.ipv4}/32 ! -i ${b} -o ${b} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} -m conntrack --ctstate DNAT ${who} -j ACCEPT`);
      // No `! -i bridge`: DNAT must also catch a container calling its own published port (hairpin).
      ports.dnat.push(`${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${who} -j DNAT --to-destination ${ep.ipv4}:${p.containerPort}`);
      ports.postrouting.push(`-s ${ep.ipv4}/32 -d ${ep.ipv4}/32 -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j MASQUERADE`);
    }
  }
  return networkRules(net, chains, net.ipam!.subnet, ports);
}

/**
 * The same structure for ip6tables, with the ports published on every address (0.0.0.0 means both
 * families, as Docker's dual stack) or on an IPv6 one. Not ::1: the kernel drops a packet from ::1 that
 * would leave the loopback device (IPv6 has no route_localnet), so [::1] ports go through a proxy
 * (proxy.ts) and need no rule here.
 */
export function bridgeRules6(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
  const b = net.driverOptions.bridge;
  const ports: PortRules = { ports: [], dnat: [], postrouting: [] };
  for (const ep of net.internal ? [] : endpoints) {
    if (!ep.ipv6) continue;
    for (const p of ep.ports.filter((x) => x.hostIp === '0.0.0.0' || (x.hostIp.includes(':') && x.hostIp !== '::1'))) {
      const who = comment(ep.containerId);
      // ::1 is local too, but the kernel would drop what a DNAT from it sends: the proxy answers there.
      const dst = p.hostIp === '0.0.0.0' ? '! -d ::1/128 ' : `-d ${p.hostIp}/128 `;
      ports.ports.push(`-d ${ep.ipv6}/128 ! -i ${b} -o ${b} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} -m conntrack --ctstate DNAT ${who} -j ACCEPT`);
      ports.dnat.push(`${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${who} -j DNAT --to-destination [${ep.ipv6}]:${p.containerPort}`);
      ports.postrouting.push(`-s ${ep.ipv6}/128 -d ${ep.ipv6}/128 -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j MASQUERADE`);
    }
  }
  return networkRules(net, chains, net.ipam6!.subnet, ports);
}

type PortRules = Required<Pick<FirewallRules, 'ports' | 'dnat' | 'postrouting'>>;

function networkRules(net: Net, chains: ChainNames, subnet: string, ports: PortRules): FirewallRules {
  const b = net.driverOptions.bridge;
  const tag = comment(`net:${net.id.slice(0, 12)}`);
  const ipv6 = subnet.includes(':');
  const rules: Required<FirewallRules> = { forward: [], isolation1: [], isolation2: [], ports: [...ports.ports], dnat: [...ports.dnat], postrouting: [], raw: [] };
  if (!ipv6) {
    // route_localnet (set for 127.0.0.1 publishing) makes the host accept packets that arrive on the
    // bridge addressed to 127.0.0.0/8, so a container with CAP_NET_RAW (a default) could reach every
    // service bound to the host's loopback (CVE-2020-8558). Berth drops them, as kube-proxy does, rather
    // than drop route_localnet for Docker's userland proxy: that is a process per published port, which a
    // daemonless engine would have to keep alive and which hides the client's address from the container.
    // kube-proxy's DROP needs `! --ctstate DNAT`; in raw PREROUTING, before conntrack and NAT, it needs no
    // state at all: a reply to the host's own 127.0.0.1:PORT connection arrives addressed to the gateway
    // (it was masqueraded) and becomes 127.0.0.1 only later, so nothing a container sends there is legitimate.
    rules.raw.push(`-i ${b} -d 127.0.0.0/8 ${tag} -j DROP`);
  }
  rules.isolation1.push(`-i ${b} ! -o ${b} ${tag} -j ${chains.isolation2}`);
  rules.isolation2.push(`-o ${b} ${tag} -j DROP`);
  rules.forward.push(`-o ${b} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`);
  if (net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j DROP`, `-o ${b} ! -i ${b} ${tag} -j DROP`);
  }
  rules.postrouting.push(...ports.postrouting);
  rules.forward.push(`-i ${b} -o ${b} ${tag} -j ${net.driverOptions.icc ? 'ACCEPT' : 'DROP'}`);
  if (!net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j ACCEPT`);
    // Nothing else enters the bridge from outside, whatever the FORWARD policy (Docker 28 does the same):
    // unpublished ports stay closed to a neighbour that routes the subnet through this host.
    rules.forward.push(`-o ${b} ! -i ${b} ${tag} -j DROP`);
    // route_localnet (127.0.0.1:PORT) has no IPv6 counterpart: ::1 is never routed.
    if (!ipv6) rules.postrouting.push(`-s 127.0.0.0/8 -o ${b} ${tag} -j MASQUERADE`);
    if (net.driverOptions.masquerade) rules.postrouting.push(`-s ${subnet} ! -o ${b} ${tag} -j MASQUERADE`);
  }
  return rules;
}
