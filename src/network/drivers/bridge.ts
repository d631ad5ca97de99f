import { InvalidArgumentError } from '../../errors.js';
import { parseCidr } from '../cidr.js';
import { comment } from '../firewall.js';
import { deleteLink, ipBatch, linkExists, writeSysctl } from '../hostnet.js';
import type { ChainNames, FirewallEndpoint, FirewallRules, NetworkDriver, NetworkRecord } from '../types.js';
import { readBool, readIfName, readInt, refuseUnknown } from './options.js';

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
    if (!linkExists(bridge)) {
      await ipBatch([
        `link add ${bridge} mtu ${mtu} type bridge`,
        `addr add ${gateway}/${parseCidr(subnet, 'subnet').prefix} dev ${bridge}`,
        `link set ${bridge} up`,
      ], { side: 'outside' });
    }
    // 127.0.0.1:PORT → container needs local-source routing onto the bridge (MACHINE-NOTES.md).
    await writeSysctl(`net.ipv4.conf.${bridge}.route_localnet`, '1');
    // Routing out of (and hairpinning back into) the bridge: Docker sets this too and leaves it set.
    if (!net.internal) await writeSysctl('net.ipv4.ip_forward', '1');
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
      `addr add ${ep.ipv4}/${ep.prefixLength} dev ${ep.interface}`,
      `link set ${ep.interface} up`,
      ...(ep.gateway && ep.defaultRoute ? [`route add default via ${ep.gateway} dev ${ep.interface}`] : []),
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
};

/** Docker's bridge rules, in Berth's chains. Pure, for tests. */
export function bridgeRules(net: Net, endpoints: readonly FirewallEndpoint[], chains: ChainNames): FirewallRules {
  const b = net.driverOptions.bridge;
  const subnet = net.ipam!.subnet;
  const tag = comment(`net:${net.id.slice(0, 12)}`);
  const rules: Required<FirewallRules> = { forward: [], isolation1: [], isolation2: [], dnat: [], postrouting: [] };
  rules.isolation1.push(`-i ${b} ! -o ${b} ${tag} -j ${chains.isolation2}`);
  rules.isolation2.push(`-o ${b} ${tag} -j DROP`);
  rules.forward.push(`-o ${b} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`);
  if (net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j DROP`, `-o ${b} ! -i ${b} ${tag} -j DROP`);
  }
  for (const ep of net.internal ? [] : endpoints) {
    for (const p of ep.ports) {
      const who = comment(ep.containerId);
      const dst = p.hostIp === '0.0.0.0' ? '' : `-d ${p.hostIp}/32 `;
      rules.forward.push(`-d ${ep.ipv4}/32 ! -i ${b} -o ${b} -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j ACCEPT`);
      // No `! -i bridge`: DNAT must also catch a container calling its own published port (hairpin).
      rules.dnat.push(`${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.hostPort} ${who} -j DNAT --to-destination ${ep.ipv4}:${p.containerPort}`);
      rules.postrouting.push(`-s ${ep.ipv4}/32 -d ${ep.ipv4}/32 -p ${p.protocol} -m ${p.protocol} --dport ${p.containerPort} ${who} -j MASQUERADE`);
    }
  }
  rules.forward.push(`-i ${b} -o ${b} ${tag} -j ${net.driverOptions.icc ? 'ACCEPT' : 'DROP'}`);
  if (!net.internal) {
    rules.forward.push(`-i ${b} ! -o ${b} ${tag} -j ACCEPT`);
    rules.postrouting.push(`-s 127.0.0.0/8 -o ${b} ${tag} -j MASQUERADE`);
    if (net.driverOptions.masquerade) rules.postrouting.push(`-s ${subnet} ! -o ${b} ${tag} -j MASQUERADE`);
  }
  return rules;
}
