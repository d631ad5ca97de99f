import { InvalidArgumentError } from '../../errors.js';
import { parseCidr } from '../cidr.js';
import { parseCidr6 } from '../cidr6.js';
import { comment } from '../firewall.js';
import { deleteLink, ipBatch, ipv6DisabledForNewLinks, linkExists, writeSysctl } from '../hostnet.js';
import type { ChainNames, FirewallEndpoint, FirewallRules, NetworkDriver, NetworkRecord } from '../types.js';
import { endpointAddressLines, readBool, readIfName, readInt, refuseUnknown } from './options.js';

export interface BridgeOptions {
  /** the Linux bridge, always berth*: Berth only touches bridges it names */
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

/** A Linux bridge per network, a veth per endpoint, NAT and filtering in Berth's chains. */
export const bridgeDriver: NetworkDriver<BridgeOptions> = {
  kind: 'bridge',
  mode: 'private',
  needsSubnet: true,
  supportsDns: true,

  parseOptions(raw, net, ctx) {
    refuseUnknown(raw, [NAME, ICC, MASQ, MTU], 'bridge');
    const bridge = raw[NAME] !== undefined ? readIfName(raw[NAME], NAME) : net.name === 'bridge' ? ctx.defaultBridgeName : `berth${net.id.slice(0, 10)}`;
    if (!bridge.startsWith('berth')) throw new InvalidArgumentError('opt', `${NAME}=${bridge} does not start with "berth"`, 'Berth only creates and deletes bridges named berth*');
    return { bridge, icc: readBool(raw, ICC, true), masquerade: readBool(raw, MASQ, true), mtu: readInt(raw, MTU, 1500, 68, 65535) };
  },

  async createNetwork(net: Net) {
    const { bridge, mtu } = net.driverOptions;
    const { subnet, gateway } = net.ipam!;
    const v6 = net.ipam6;
    if (!linkExists(bridge)) {
      const addresses = [`addr add ${gateway}/${parseCidr(subnet, 'subnet').prefix} dev ${bridge}`];
      // nodad: the gateway must answer at once; nobody else on a fresh bridge can hold its address.
      if (v6) addresses.push(`addr add ${v6.gateway}/${parseCidr6(v6.subnet, 'subnet').prefix} dev ${bridge} nodad`);
      if (v6 && ipv6DisabledForNewLinks()) {
        await ipBatch([`link add ${bridge} mtu ${mtu} type bridge`], { side: 'outside' });
        await writeSysctl(`net.ipv6.conf.${bridge}.disable_ipv6`, '0');
        await ipBatch([...addresses, `link set ${bridge} up`], { side: 'outside' });
      } else {
        await ipBatch([`link add ${bridge} mtu ${mtu} type bridge`, ...addresses, `link set ${bridge} up`], { side: 'outside' });
      }
    }
    // 127.0.0.1:PORT → container needs local-source routing onto the bridge (MACHINE-NOTES.md).
    await writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, '1');
    // Routing out of (and hairpinning back into) the bridge: Docker sets this too and leaves it set.
    if (!net.internal) await writeSysctl('net.ipv4.ip_forward', '1');
    // The same for IPv6, only for a routed IPv6 network, as Docker. Left set too. Note that with
    // forwarding on, the host stops accepting router advertisements on interfaces with accept_ra=1.
    if (!net.internal && v6) await writeSysctl('net.ipv6.conf.all.forwarding', '1');
  },

  async deleteNetwork(net: Net) {
    await deleteLink(net.driverOptions.bridge);
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

  firewall(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
    return bridgeRules(net, endpoints, chains);
  },

  firewall6(net: Net, chains: ChainNames): FirewallRules {
    return bridgeRules6(net, chains);
  },
};

/** Docker's bridge rules, in Berth's chains. Pure, for tests. */
export function bridgeRules(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
  const b = net.driverOptions.bridge;
  const ports: PortRules = { forward: [], dnat: [], postrouting: [] };
  for (const ep of net.internal ? [] : endpoints) {
    for (const p of ep.ports) {
      const who = comment(ep.containerId);
      const dst = p.hostIp === '0.0.0.0' ? '' : `-d ${p.hostIp}/32 `;
      ports.forward.push(`-d ${ep.ipv4}/32 ! -i ${b} -o ${b} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j ACCEPT`);
      // No `! -i bridge`: DNAT must also catch a container calling its own published port (hairpin).
      ports.dnat.push(`${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${who} -j DNAT --to-destination ${ep.ipv4}:${p.containerPort}`);
      ports.postrouting.push(`-s ${ep.ipv4}/32 -d ${ep.ipv4}/32 -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j MASQUERADE`);
    }
  }
  return networkRules(net, chains, net.ipam!.subnet, ports);
}

/** The same structure for ip6tables: isolation, conntrack, icc, way out and MASQUERADE; no published ports. */
export function bridgeRules6(net: Net, chains: ChainNames): FirewallRules {
  return networkRules(net, chains, net.ipam6!.subnet, { forward: [], dnat: [], postrouting: [] });
}

type PortRules = Required<Pick<FirewallRules, 'forward' | 'dnat' | 'postrouting'>>;

function networkRules(net: Net, chains: ChainNames, subnet: string, ports: PortRules): FirewallRules {
  const b = net.driverOptions.bridge;
  const tag = comment(`net:${net.id.slice(0, 12)}`);
  const ipv6 = subnet.includes(':');
  const rules: Required<FirewallRules> = { forward: [], isolation1: [], isolation2: [], dnat: [...ports.dnat], postrouting: [] };
  rules.isolation1.push(`-i ${b} ! -o ${b} ${tag} -j ${chains.isolation2}`);
  rules.isolation2.push(`-o ${b} ${tag} -j DROP`);
  rules.forward.push(`-o ${b} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`);
  if (net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j DROP`, `-o ${b} ! -i ${b} ${tag} -j DROP`);
  }
  rules.forward.push(...ports.forward);
  rules.postrouting.push(...ports.postrouting);
  rules.forward.push(`-i ${b} -o ${b} ${tag} -j ${net.driverOptions.icc ? 'ACCEPT' : 'DROP'}`);
  if (!net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j ACCEPT`);
    // route_localnet (127.0.0.1:PORT) has no IPv6 counterpart: ::1 is never routed.
    if (!ipv6) rules.postrouting.push(`-s 127.0.0.0/8 -o ${b} ${tag} -j MASQUERADE`);
    if (net.driverOptions.masquerade) rules.postrouting.push(`-s ${subnet} ! -o ${b} ${tag} -j MASQUERADE`);
  }
  return rules;
}
