import { afterEach, describe, expect, test } from 'vitest';
import {
  applyLines, diffRemoteEndpoints, flannelRemoteLines, flannelRemoteRemoval, flannelVtepLines, flannelVxlanName,
  hostGwRouteLines, hostGwRouteRemoval, joinLines, linkMac, overlayBridgeMac, overlayBridgeName, overlayMtu, overlayNetworkLines,
  overlayNetworkTeardown, overlayVxlanName, readRoutes, readVxlanState, remoteEndpointLines, remoteEndpointRemoval,
  type RemoteEndpoint,
} from '../../src/network/vxlan.js';
import { linksIn, makeHosts, type Host, type Hosts } from '../helpers/hosts.js';

/**
 * The kernel side of multi-host networks, with no Berth containers: hosts are netns on an underlay,
 * "containers" are netns with a veth into a host's bridge, and every device and entry is made with the
 * line builders of src/network/vxlan.ts.
 */

let hosts: Hosts | undefined;
afterEach(async () => {
  const h = hosts;
  hosts = undefined;
  await h?.remove();
});

const UNDERLAY_MTU = 1400;

interface Ctr {
  name: string;
  netnsPath: string;
  ip: string;
  mac: string;
  host: Host;
}

let ctrCount = 0;

/** A hand-made container: a netns with eth0 (a veth whose host end is in `bridge`), an address and a default route. */
async function container(h: Host, opts: { bridge: string; ip: string; prefix: number; gateway: string; mtu: number }): Promise<Ctr> {
  const n = ++ctrCount;
  const ns = await hosts!.makeNetns(`c${n}`);
  const mac = `02:42:0a:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  await applyLines({
    ip: [
      `link add v${n} mtu ${opts.mtu} type veth peer name eth0 mtu ${opts.mtu} address ${mac} netns ${ns.name}`,
      `link set v${n} master ${opts.bridge} up`,
    ], bridge: [],
  }, { netns: h.netnsPath });
  await applyLines({
    ip: ['link set lo up', `addr add ${opts.ip}/${opts.prefix} dev eth0`, 'link set eth0 up', `route add default via ${opts.gateway}`],
    bridge: [],
  }, { netns: ns.netnsPath });
  return { name: ns.name, netnsPath: ns.netnsPath, ip: opts.ip, mac, host: h };
}

async function inCtr(c: Ctr, cmd: string[], timeout = 15_000) {
  const r = await execaNs(c.netnsPath, cmd, timeout);
  return r;
}

async function execaNs(netnsPath: string, cmd: string[], timeout: number) {
  const { execa } = await import('execa');
  const r = await execa('nsenter', [`--net=${netnsPath}`, ...cmd], { reject: false, timeout });
  return { exitCode: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** One ping answered (a few tries: the first packets may race the entries). */
async function pings(from: Ctr, to: string): Promise<boolean> {
  return (await inCtr(from, ['busybox', 'ping', '-c', '1', '-W', '1', '-w', '3', to])).exitCode === 0;
}

/** Never answered within three tries. */
async function silent(from: Ctr, to: string): Promise<boolean> {
  return (await inCtr(from, ['busybox', 'ping', '-c', '3', '-i', '0.2', '-W', '1', '-w', '3', to])).exitCode !== 0;
}

function endpoint(c: Ctr): RemoteEndpoint {
  return { ip: c.ip, mac: c.mac, host: c.host.address };
}

/** On every host, the entries of every container of the network running elsewhere. */
async function installRemotes(vni: number, ctrs: readonly Ctr[]): Promise<void> {
  for (const h of hosts!.hosts) {
    const remote = ctrs.filter((c) => c.host !== h).map((c) => remoteEndpointLines(vni, endpoint(c)));
    await applyLines(joinLines(...remote), { netns: h.netnsPath });
  }
}

describe('overlay: a bridge and a VXLAN device per network per host, entries per remote endpoint', () => {
  test('containers on three hosts reach each other; gateways stay local; two VNIs are isolated; removed entries stop traffic', async () => {
    hosts = await makeHosts(3, { mtu: UNDERLAY_MTU });
    const [h1, h2, h3] = hosts.hosts as [Host, Host, Host];
    const nets = [
      { id: 'a1a1a1a1a1a1a1a1', vni: 100, prefix: '10.70.0', },
      { id: 'b2b2b2b2b2b2b2b2', vni: 200, prefix: '10.71.0' },
    ];
    for (const h of hosts.hosts) {
      const mtu = await overlayMtu(h.address, undefined, h.netnsPath);
      expect(mtu).toBe(UNDERLAY_MTU - 50);
      for (const n of nets) {
        await applyLines(overlayNetworkLines({ networkId: n.id, vni: n.vni, gateway: `${n.prefix}.1/24`, local: h.address, mtu }), { netns: h.netnsPath });
      }
      expect((await linksIn(h.netnsPath)).sort()).toEqual(['berthvx100', 'berthvx200', 'eth0', 'lo', overlayBridgeName(nets[0]!.id), overlayBridgeName(nets[1]!.id)].sort());
      const link = await execaNs(h.netnsPath, ['ip', '-o', 'link', 'show', 'dev', overlayVxlanName(100)], 5000);
      expect(link.out).toContain(`mtu ${UNDERLAY_MTU - 50}`);
    }
    const on = (h: Host, n: (typeof nets)[number], last: number) =>
      container(h, { bridge: overlayBridgeName(n.id), ip: `${n.prefix}.${last}`, prefix: 24, gateway: `${n.prefix}.1`, mtu: UNDERLAY_MTU - 50 });
    const a = [await on(h1, nets[0]!, 11), await on(h2, nets[0]!, 12), await on(h3, nets[0]!, 13)] as const;
    const b = [await on(h1, nets[1]!, 21), await on(h2, nets[1]!, 22)] as const;
    await installRemotes(100, a);
    await installRemotes(200, b);

    // Across hosts, both ways, on both networks.
    expect(await pings(a[0], a[1].ip)).toBe(true);
    expect(await pings(a[1], a[0].ip)).toBe(true);
    expect(await pings(a[0], a[2].ip)).toBe(true);
    expect(await pings(a[2], a[1].ip)).toBe(true);
    expect(await pings(b[1], b[0].ip)).toBe(true);
    // A packet of the overlay's full MTU crosses (its outer packet is exactly the underlay's MTU).
    expect((await inCtr(a[0], ['busybox', 'ping', '-c', '1', '-W', '2', '-s', String(UNDERLAY_MTU - 50 - 28), a[1].ip])).exitCode).toBe(0);

    // Every host answers the same gateway address itself: the container's ARP entry is its own host's bridge.
    for (const c of a) {
      expect(await pings(c, '10.70.0.1')).toBe(true);
      const bridgeMac = await linkMac(overlayBridgeName(nets[0]!.id), c.host.netnsPath);
      expect(bridgeMac).toBe(overlayBridgeMac(nets[0]!.id, c.host.address));
      const neigh = await inCtr(c, ['ip', 'neigh', 'show', '10.70.0.1']);
      expect(neigh.out).toContain(bridgeMac!);
    }
    // No flooding entry anywhere: ARP for remote containers is answered by the VXLAN proxy.
    for (const h of hosts.hosts) {
      const st = (await readVxlanState(overlayVxlanName(100), h.netnsPath))!;
      expect(st.fdb.map((f) => f.mac)).not.toContain('00:00:00:00:00:00');
      expect(st.fdb).toHaveLength(h === h3 ? 2 : 2);
      expect(st.neigh.map((n) => n.ip).sort()).toEqual(a.filter((c) => c.host !== h).map((c) => c.ip).sort());
    }

    // L2 isolation: network 200's device holds none of network 100's endpoints, and a container of 100
    // that puts 200's subnet on its link gets no answer for a container of 200 on another host.
    const st200 = (await readVxlanState(overlayVxlanName(200), h1.netnsPath))!;
    expect(st200.neigh.map((n) => n.ip)).toEqual([b[1].ip]);
    await inCtr(a[0], ['ip', 'route', 'add', '10.71.0.0/24', 'dev', 'eth0']);
    expect(await silent(a[0], b[1].ip)).toBe(true);

    // Removing h3's endpoint on h1 (twice: missing is success) stops h1 → h3 and leaves h1 → h2.
    await applyLines(remoteEndpointRemoval(100, a[2]), { netns: h1.netnsPath, forgiving: true });
    await applyLines(remoteEndpointRemoval(100, a[2]), { netns: h1.netnsPath, forgiving: true });
    await inCtr(a[0], ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    expect(await silent(a[0], a[2].ip)).toBe(true);
    expect(await pings(a[0], a[1].ip)).toBe(true);

    // A repair diffs what should exist against what does: on h2, h3's endpoint goes, a lost entry of h1's comes back.
    await applyLines(remoteEndpointRemoval(100, a[0]), { netns: h2.netnsPath });
    const diff = diffRemoteEndpoints(100, [endpoint(a[0])], (await readVxlanState(overlayVxlanName(100), h2.netnsPath))!);
    expect(diff.add.bridge).toHaveLength(1);
    expect(diff.remove.ip).toEqual([`neigh del ${a[2].ip} dev berthvx100`]);
    await applyLines(diff.remove, { netns: h2.netnsPath, forgiving: true });
    await applyLines(diff.add, { netns: h2.netnsPath });
    const again = diffRemoteEndpoints(100, [endpoint(a[0])], (await readVxlanState(overlayVxlanName(100), h2.netnsPath))!);
    expect([...again.add.ip, ...again.add.bridge, ...again.remove.ip, ...again.remove.bridge]).toEqual([]);
    expect(await pings(a[1], a[0].ip)).toBe(true);

    // Teardown (twice: missing is success) leaves only the hand-made containers' veths.
    for (const h of hosts.hosts) {
      for (const n of nets) {
        await applyLines(overlayNetworkTeardown(n.id, n.vni), { netns: h.netnsPath, forgiving: true });
        await applyLines(overlayNetworkTeardown(n.id, n.vni), { netns: h.netnsPath, forgiving: true });
      }
      expect((await linksIn(h.netnsPath)).filter((l) => l.startsWith('berth'))).toEqual([]);
    }
  }, 180_000);
});

describe('flannel: a subnet per host, routed by host-gw or by VXLAN', () => {
  /** Each host: a local bridge with the first address of its subnet, one container, forwarding on. */
  async function perHostSubnets(base: string) {
    const out: { host: Host; subnet: string; ctr: Ctr }[] = [];
    for (const [i, h] of hosts!.hosts.entries()) {
      const subnet = `${base}.${i + 1}.0/24`;
      const gw = `${base}.${i + 1}.1`;
      await applyLines({ ip: ['link add berthfg mtu 1350 type bridge', `addr add ${gw}/24 dev berthfg`, 'link set berthfg up'], bridge: [] }, { netns: h.netnsPath });
      await execaNs(h.netnsPath, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'], 5000);
      out.push({ host: h, subnet, ctr: await container(h, { bridge: 'berthfg', ip: `${base}.${i + 1}.10`, prefix: 24, gateway: gw, mtu: 1350 }) });
    }
    return out;
  }

  test('host-gw: routes via the other hosts carry the traffic; removed, they stop it', async () => {
    hosts = await makeHosts(3, { mtu: UNDERLAY_MTU });
    const s = await perHostSubnets('10.72');
    for (const me of s) {
      const lines = s.filter((o) => o !== me).map((o) => hostGwRouteLines({ subnet: o.subnet, host: o.host.address }));
      await applyLines(joinLines(...lines), { netns: me.host.netnsPath });
      // replace: a second apply is a no-op, not an error
      await applyLines(joinLines(...lines), { netns: me.host.netnsPath });
      expect((await readRoutes(me.host.netnsPath)).map((r) => r.subnet).sort()).toEqual(s.filter((o) => o !== me).map((o) => o.subnet).sort());
    }
    expect(await pings(s[0]!.ctr, s[1]!.ctr.ip)).toBe(true);
    expect(await pings(s[1]!.ctr, s[2]!.ctr.ip)).toBe(true);
    expect(await pings(s[2]!.ctr, s[0]!.ctr.ip)).toBe(true);
    const gone = hostGwRouteRemoval({ subnet: s[2]!.subnet, host: s[2]!.host.address });
    await applyLines(gone, { netns: s[0]!.host.netnsPath, forgiving: true });
    await applyLines(gone, { netns: s[0]!.host.netnsPath, forgiving: true });
    expect(await silent(s[0]!.ctr, s[2]!.ctr.ip)).toBe(true);
    expect(await pings(s[0]!.ctr, s[1]!.ctr.ip)).toBe(true);
    for (const me of s) await applyLines({ ip: ['link del berthfg'], bridge: [] }, { netns: me.host.netnsPath });
    // The routes went with nothing: they name the underlay; remove them as a driver would.
    for (const me of s) {
      const mine = s.filter((o) => o !== me).map((o) => hostGwRouteRemoval({ subnet: o.subnet, host: o.host.address }));
      await applyLines(joinLines(...mine), { netns: me.host.netnsPath, forgiving: true });
      expect(await readRoutes(me.host.netnsPath)).toEqual([]);
    }
  }, 180_000);

  test('vxlan: berthfl<VNI> per host, routes via each subnet .0 onlink, neighbour and FDB entries to the VTEP MACs', async () => {
    hosts = await makeHosts(3, { mtu: UNDERLAY_MTU });
    const s = await perHostSubnets('10.73');
    const vni = 1;
    const dev = flannelVxlanName(vni);
    const mtu = await overlayMtu(s[0]!.host.address, undefined, s[0]!.host.netnsPath);
    for (const me of s) await applyLines(flannelVtepLines({ vni, subnet: me.subnet, local: me.host.address, mtu }), { netns: me.host.netnsPath });
    const macs = await Promise.all(s.map((me) => linkMac(dev, me.host.netnsPath)));
    const remote = (i: number) => ({ subnet: s[i]!.subnet, host: s[i]!.host.address, vtepMac: macs[i]! });
    for (const [i, me] of s.entries()) {
      const lines = s.flatMap((_, j) => (j === i ? [] : [flannelRemoteLines(vni, remote(j))]));
      await applyLines(joinLines(...lines), { netns: me.host.netnsPath });
      const st = (await readVxlanState(dev, me.host.netnsPath))!;
      expect(st.routes).toHaveLength(2);
      expect(st.fdb.map((f) => f.mac)).not.toContain('00:00:00:00:00:00');
    }
    expect(await pings(s[0]!.ctr, s[1]!.ctr.ip)).toBe(true);
    expect(await pings(s[1]!.ctr, s[2]!.ctr.ip)).toBe(true);
    expect(await pings(s[2]!.ctr, s[0]!.ctr.ip)).toBe(true);
    // The traffic went through the VXLAN device, not the underlay's own routes (there are none for these subnets).
    expect((await execaNs(s[0]!.host.netnsPath, ['ip', 'route', 'get', s[1]!.ctr.ip], 5000)).out).toContain(`dev ${dev}`);

    await applyLines(flannelRemoteRemoval(vni, remote(2)), { netns: s[0]!.host.netnsPath, forgiving: true });
    await applyLines(flannelRemoteRemoval(vni, remote(2)), { netns: s[0]!.host.netnsPath, forgiving: true });
    expect(await silent(s[0]!.ctr, s[2]!.ctr.ip)).toBe(true);
    expect(await pings(s[0]!.ctr, s[1]!.ctr.ip)).toBe(true);
    for (const me of s) await applyLines({ ip: [`link del ${dev}`, 'link del berthfg'], bridge: [] }, { netns: me.host.netnsPath, forgiving: true });
  }, 180_000);
});
