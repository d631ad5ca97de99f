import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { deleteLink, ipBatch, linkExists } from '../hostnet.js';
import type { NetworkDriver, NetworkRecord } from '../types.js';
import { endpointAddressLines, readIfName, refuseUnknown } from './options.js';

export interface MacvlanOptions {
  /** the host interface the macvlans hang off: `parent`, or `parent.vlan` */
  link: string;
  mode: 'bridge' | 'private' | 'vepa' | 'passthru';
  /** set when `link` is an 802.1q link Berth creates (and so removes with the network) */
  vlan?: { base: string; id: number; created: boolean };
}

const MODES = ['bridge', 'private', 'vepa', 'passthru'] as const;

type Net = NetworkRecord<MacvlanOptions>;

/**
 * Containers get their own MAC on a host interface. The host itself cannot talk to them through that
 * interface (a macvlan property), and there is no Berth name server: resolv.conf comes from the host.
 */
export const macvlanDriver: NetworkDriver<MacvlanOptions> = {
  kind: 'macvlan',
  mode: 'private',
  needsSubnet: true,
  supportsDns: false,

  parseOptions(raw) {
    refuseUnknown(raw, ['parent', 'macvlan_mode'], 'macvlan');
    const parent = raw.parent;
    if (!parent) throw new InvalidArgumentError('opt', 'the macvlan driver needs -o parent=IFACE', 'name the host interface, e.g. -o parent=eth0 or parent=eth0.10 for VLAN 10');
    const link = readIfName(parent, 'parent');
    const mode = (raw.macvlan_mode ?? 'bridge') as MacvlanOptions['mode'];
    if (!MODES.includes(mode)) throw new InvalidArgumentError('opt', `macvlan_mode=${mode} is not one of ${MODES.join(', ')}`);
    const m = /^(.+)\.(\d{1,4})$/.exec(link);
    if (m && !linkExists(link)) {
      const id = Number(m[2]);
      if (id < 1 || id > 4094) throw new InvalidArgumentError('opt', `parent=${link}: VLAN ${id} is outside 1-4094`);
      if (!linkExists(m[1]!)) throw new NotFoundError('device', m[1]!, 'the parent interface must exist on the host');
      return { link, mode, vlan: { base: m[1]!, id, created: true } };
    }
    if (!linkExists(link)) throw new NotFoundError('device', link, 'the parent interface must exist on the host');
    return { link, mode };
  },

  async createNetwork(net: Net) {
    const { link, vlan } = net.driverOptions;
    if (vlan?.created && !linkExists(link)) {
      await ipBatch([`link add link ${vlan.base} name ${link} type vlan id ${vlan.id}`, `link set ${link} up`], { side: 'outside' });
    }
  },

  async deleteNetwork(net: Net) {
    if (net.driverOptions.vlan?.created) await deleteLink(net.driverOptions.link);
  },

  async join(net: Net, ep, sandbox) {
    const { link, mode } = net.driverOptions;
    // Created from the host (its parent lives there) straight into the netns, already named eth<N>.
    sandbox.outside([`link add name ${ep.interface} link ${link} address ${ep.mac} netns ${sandbox.netnsPath} type macvlan mode ${mode}`]);
    sandbox.inside(endpointAddressLines(ep));
    return {};
  },

  // The macvlan lives only inside the netns and goes with it.
  async leave() {},
};
