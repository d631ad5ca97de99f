import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError } from '../../src/errors.js';
import { overlaps, parseCidr } from '../../src/network/cidr.js';
import { hostUses } from '../../src/network/hostnet.js';
import { openNetworkManager, type NetworkManager, type NetworkManagerOptions } from '../../src/network/index.js';
import { resolveLayout, rootTag } from '../../src/paths.js';
import { run } from '../../src/util/exec.js';
import { ipNetnsLeaks } from '../helpers/leaks.js';
import { attachReq, newId, save } from './helpers.js';

/**
 * Address planning against the host: a veth pair made here holds addresses in the subnets Berth would
 * pick (as another engine's bridge or a VPN would), and each root checks them when it makes a bridge.
 * Subnets: 10.233.0.0/16-10.236.0.0/16 (this file's own); links berthb12*.
 */
const VETH = 'berthb12a';
const PEER = 'berthb12b';

interface Root { root: string; mgr: NetworkManager; prefix: string; ctrs: string[] }
let roots: Root[] = [];

async function newRoot(k: number, opts: NetworkManagerOptions): Promise<Root> {
  const root = await mkdtemp(path.join(tmpdir(), `berth-b12-${k}-`));
  await chmod(root, 0o755);
  const prefix = `BERTHB12R${k}`;
  const mgr = openNetworkManager(resolveLayout({ root, runroot: path.join(root, 'run') }), { chainPrefix: prefix, ...opts });
  const r = { root, mgr, prefix, ctrs: [] };
  roots.push(r);
  return r;
}

async function hostAddr(cidr: string): Promise<void> {
  await run('ip', ['addr', 'add', cidr, 'dev', VETH]);
}

/** Attaches a container to the default bridge and returns the bridge network's subnet. */
async function runOnDefault(r: Root): Promise<string> {
  const id = newId();
  r.ctrs.push(id);
  await attachReq(r.mgr, { id, name: `c${r.ctrs.length}`, hostname: 'c', request: { networks: ['bridge'] } });
  return (await r.mgr.inspect('bridge')).network.ipam!.subnet;
}

/** Every IPv4 route of the host inside 10.233.0.0/14, by device. */
function ourRoutes(): { subnet: string; dev: string }[] {
  const mine = parseCidr('10.232.0.0/13', 'x');
  return hostUses().filter((u) => u.kind === 'route' && overlaps(u.net, mine) && (u.dev.startsWith('berth')))
    .map((u) => ({ subnet: `${[u.net.base >>> 24, (u.net.base >>> 16) & 255, (u.net.base >>> 8) & 255, u.net.base & 255].join('.')}/${u.net.prefix}`, dev: u.dev }));
}

beforeEach(async () => {
  await run('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', PEER]);
  await run('ip', ['link', 'set', VETH, 'up']);
  await run('ip', ['link', 'set', PEER, 'up']);
});

afterEach(async () => {
  const errors: unknown[] = [];
  for (const r of roots) {
    try {
      await r.mgr.reconcile(new Set());
      for (const { network: n } of await r.mgr.list()) if (!n.builtin) await r.mgr.remove(n.id);
      await r.mgr.shutdown();
    } catch (err) { errors.push(err); }
  }
  await run('ip', ['link', 'del', VETH]).catch(() => {});
  const leaks: string[] = [];
  for (const l of await readdir('/sys/class/net')) if (l.startsWith('berthb12')) leaks.push(`link ${l}`);
  const rules = `${await save()}\n${await save('ip6tables-save')}`;
  for (const r of roots) {
    for (const line of rules.split('\n')) if (line.includes(`${r.prefix}-`) || line.includes(`berth:${r.prefix}"`)) leaks.push(`rule ${line}`);
    if (existsSync(path.join(r.root, 'run', 'netns')) && (await readdir(path.join(r.root, 'run', 'netns'))).length) leaks.push(`netns under ${r.root}`);
    leaks.push(...ipNetnsLeaks(path.join(r.root, 'run', 'netns'), new Set()));
    await rm(r.root, { recursive: true, force: true });
  }
  roots = [];
  if (errors.length || leaks.length) throw new AggregateError(errors, `cleanup failed; leaked: ${leaks.join(', ') || 'nothing'}`);
});

describe('subnets checked against the host when a bridge is made', () => {
  it('a fresh root whose default subnet is taken on the host picks the next free one of its pool', async () => {
    await hostAddr('10.233.1.1/24');
    const r = await newRoot(1, { defaultBridge: { name: 'berthb12d1', subnet: '10.233.1.0/24' }, addressPools: [{ base: '10.233.0.0/16', size: 24 }] });
    // Until the bridge is made, the candidate is only a candidate.
    expect((await r.mgr.inspect('bridge')).network).toMatchObject({ ipam: { subnet: '10.233.1.0/24' }, subnetPending: true });
    const subnet = await runOnDefault(r);
    expect(subnet).toBe('10.233.0.0/24');
    const bridge = await r.mgr.inspect('bridge');
    expect(bridge.network.subnetPending).toBeUndefined();
    expect(bridge.network.ipam!.gateway).toBe('10.233.0.1');
    expect(ourRoutes()).toEqual(expect.arrayContaining([{ subnet: '10.233.1.0/24', dev: VETH }, { subnet: '10.233.0.0/24', dev: 'berthb12d1' }]));
    expect(ourRoutes().filter((x) => x.subnet === '10.233.1.0/24')).toHaveLength(1);
    // Settled: a route that comes up later in the chosen subnet does not renumber it, it is reported.
    await hostAddr('10.233.0.200/32');
    expect(bridge.warnings).toEqual([]);
    expect((await r.mgr.inspect('bridge')).warnings).toEqual([`subnet 10.233.0.0/24 of network bridge is already used on the host: address 10.233.0.200 on ${VETH}`]);
    await r.mgr.reconcile(new Set());
    await r.mgr.shutdown();
    // Made again (after a reboot, say), the bridge is refused rather than stacked on the host's address.
    const again = runOnDefault(r);
    await expect(again).rejects.toThrow(BadStateError);
    await expect(again).rejects.toThrow(`network bridge: subnet 10.233.0.0/24 of network bridge is already used on the host: address 10.233.0.200 on ${VETH}`);
    expect(existsSync('/sys/class/net/berthb12d1')).toBe(false);
  });

  it('two roots made one after the other never share a subnet, default bridge or automatic', async () => {
    const pools = [{ base: '10.234.0.0/16', size: 24 }];
    const a = await newRoot(2, { defaultBridge: { name: 'berthb12d2', subnet: '10.234.7.0/24' }, addressPools: pools });
    const b = await newRoot(3, { defaultBridge: { name: 'berthb12d3', subnet: '10.234.7.0/24' }, addressPools: pools });
    expect(await runOnDefault(a)).toBe('10.234.7.0/24');
    expect(await runOnDefault(b)).toBe('10.234.0.0/24');
    await a.mgr.create({ name: 'auto' });
    await b.mgr.create({ name: 'auto' });
    const sa = (await a.mgr.inspect('auto')).network.ipam!.subnet;
    const sb = (await b.mgr.inspect('auto')).network.ipam!.subnet;
    expect([sa, sb]).toEqual(['10.234.1.0/24', '10.234.2.0/24']);
    // Root A's bridge goes (shutdown, a reboot): B may take its subnet, and A then refuses to stack on it.
    await a.mgr.reconcile(new Set());
    await a.mgr.shutdown();
    await b.mgr.create({ name: 'x', subnets: [sa] });
    const id = newId();
    a.ctrs.push(id);
    await expect(attachReq(a.mgr, { id, name: 'late', hostname: 'late', request: { networks: ['auto'] } }))
      .rejects.toThrow(new RegExp(`network auto: subnet ${sa.replace(/\./g, '\\.')} of network auto is already used on the host: route ${sa.replace(/\./g, '\\.')} dev berth`));
  });

  it('two roots starting their first containers at the same time take different subnets', async () => {
    const pools = [{ base: '10.234.64.0/18', size: 24 }];
    const a = await newRoot(10, { defaultBridge: { name: 'berthb12d10', subnet: '10.234.50.0/24' }, addressPools: pools });
    const b = await newRoot(11, { defaultBridge: { name: 'berthb12d11', subnet: '10.234.50.0/24' }, addressPools: pools });
    const [sa, sb] = await Promise.all([runOnDefault(a), runOnDefault(b)]);
    expect([sa, sb].sort()).toEqual(['10.234.50.0/24', '10.234.64.0/24']);
  });

  it('refuses a given --subnet that overlaps a host route or address, naming it, unless allowed', async () => {
    await hostAddr('10.235.1.1/24');
    await hostAddr('10.235.9.5/32');
    const r = await newRoot(4, { defaultBridge: { name: 'berthb12d4', subnet: '10.235.200.0/24' } });
    const refused = r.mgr.create({ name: 'over', subnets: ['10.235.0.0/16'] });
    await expect(refused).rejects.toThrow(InvalidArgumentError);
    await expect(refused).rejects.toThrow(`invalid subnet: 10.235.0.0/16 is already used on the host: route 10.235.1.0/24 dev ${VETH}`);
    await expect(r.mgr.create({ name: 'gw', subnets: ['10.235.9.0/24'], gateways: ['10.235.9.5'] })).rejects.toThrow(`address 10.235.9.5 on ${VETH}`);
    await expect(r.mgr.create({ name: 'rng', subnets: ['10.235.9.0/24'], ipRanges: ['10.235.9.0/28'] })).rejects.toThrow(`address 10.235.9.5 on ${VETH}`);
    expect((await r.mgr.list()).map((d) => d.network.name).sort()).toEqual(['bridge', 'host', 'none']);
    await r.mgr.create({ name: 'forced', subnets: ['10.235.1.0/24'], allowHostOverlap: true, options: { 'com.docker.network.bridge.name': 'berthb12f' } });
    const forced = await r.mgr.inspect('forced');
    expect(forced.network.hostOverlapAllowed).toBe(true);
    expect(forced.warnings).toEqual([]);
    // An existing bridge adopted with its own address in the subnet is not a conflict with itself.
    await run('ip', ['link', 'add', 'berthb12x', 'type', 'bridge']);
    try {
      await run('ip', ['addr', 'add', '10.235.50.1/24', 'dev', 'berthb12x']);
      await run('ip', ['link', 'set', 'berthb12x', 'up']);
      await r.mgr.create({ name: 'adopt', subnets: ['10.235.50.0/24'], options: { 'com.docker.network.bridge.name': 'berthb12x' } });
      await r.mgr.remove('adopt');
    } finally {
      await run('ip', ['link', 'del', 'berthb12x']).catch(() => {});
    }
  });

  it('300 automatic networks in a row overlap neither one another nor the host', async () => {
    // Host addresses inside the pool: a /24 route and a lone /32.
    await hostAddr('10.236.0.130/25');
    await hostAddr('10.236.3.7/32');
    const r = await newRoot(5, { defaultBridge: { name: 'berthb12d5', subnet: '10.236.200.0/24' }, addressPools: [{ base: '10.236.0.0/17', size: 26 }] });
    // The first ones are bridges, whose routes the next ones must avoid as well; the rest are macvlans on
    // the veth (one iptables rewrite per bridge makes 300 bridges take minutes; planning is the same code).
    for (let i = 0; i < 300; i++) await r.mgr.create({ name: `n${i}`, ...(i < 20 ? {} : { driver: 'macvlan', options: { parent: PEER } }) });
    const bridges = new Set((await r.mgr.list()).flatMap((d) => (d.network.driver === 'bridge' ? [(d.network.driverOptions as { bridge: string }).bridge] : [])));
    expect(ourRoutes().filter((x) => bridges.has(x.dev))).toHaveLength(20);
    const subnets = (await r.mgr.list()).flatMap((d) => (d.network.ipam && !d.network.builtin ? [parseCidr(d.network.ipam.subnet, 's')] : []));
    expect(subnets).toHaveLength(300);
    for (const [i, s] of subnets.entries()) {
      for (const t of subnets.slice(i + 1)) expect(overlaps(s, t)).toBe(false);
    }
    const host = hostUses().filter((u) => u.dev === VETH).map((u) => u.net);
    expect(host.length).toBeGreaterThanOrEqual(3);
    for (const s of subnets) for (const h of host) expect(overlaps(s, h), JSON.stringify({ s, h })).toBe(false);
    // 10.236.0.128/26 (the /25 route) and 10.236.3.0/26 (the /32) were skipped; the rest is in order.
    expect(subnets.slice(0, 3).map((s) => s.base & 0xffff)).toEqual([0x0000, 0x0040, 0x0100]);
    expect(subnets.some((s) => (s.base & 0xffff) === 0x0300)).toBe(false);
  }, 600_000);

  it('says which pools ran out', async () => {
    await hostAddr('10.236.240.70/32');
    const r = await newRoot(6, { defaultBridge: { name: 'berthb12d6', subnet: '10.236.250.0/24' }, addressPools: [{ base: '10.236.240.0/24', size: 26 }] });
    for (let i = 0; i < 3; i++) await r.mgr.create({ name: `n${i}` });
    const full = r.mgr.create({ name: 'one-too-many' });
    await expect(full).rejects.toThrow(BadStateError);
    await expect(full).rejects.toThrow(/no free IPv4 subnet left in the address pools \(10\.236\.240\.0\/24 by \/26\)/);
  });
});

describe('containers\' network namespaces in ip netns', () => {
  it('names each by root and container, reachable with ip netns exec, gone with the container', async () => {
    const a = await newRoot(7, { defaultBridge: { name: 'berthb12d7', subnet: '10.233.70.0/24' } });
    const b = await newRoot(8, { defaultBridge: { name: 'berthb12d8', subnet: '10.233.80.0/24' } });
    const ida = newId();
    const idb = newId();
    a.ctrs.push(ida);
    b.ctrs.push(idb);
    const sa = await attachReq(a.mgr, { id: ida, name: 'web', hostname: 'web', request: { networks: ['bridge'] } });
    await attachReq(b.mgr, { id: idb, name: 'web', hostname: 'web', request: { networks: ['bridge'] } });
    const names = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.endsWith('-web'));
    const tagA = `berth-${rootTag(a.root).slice(0, 8)}-web`;
    const tagB = `berth-${rootTag(b.root).slice(0, 8)}-web`;
    expect(names).toEqual(expect.arrayContaining([tagA, tagB]));
    expect((await run('ip', ['netns', 'exec', tagA, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout).toContain(`${sa.endpoints[0]!.ipv4}/24`);
    await a.mgr.detach(ida);
    expect(existsSync(`/run/netns/${tagA}`)).toBe(false);
    expect(existsSync(`/run/netns/${tagB}`)).toBe(true);
    // A link a crash left (no record): the next reconcile removes it with the rest.
    await rm(path.join(b.root, 'run', 'net', 'sandboxes', `${idb}.json`));
    expect(ipNetnsLeaks(path.join(b.root, 'run', 'netns'), new Set())).toEqual([`ip netns ${tagB} of ${idb.slice(0, 12)}`]);
    expect(await b.mgr.reconcile(new Set())).toEqual(expect.arrayContaining([`ip netns ${tagB}`]));
    expect(existsSync(`/run/netns/${tagB}`)).toBe(false);
  });
});

describe('published ports on IPv6', () => {
  it('answers on [::1] and, for -p PORT:PORT, on both families; removes the ip6tables rules and the proxy with the container', async () => {
    const r = await newRoot(9, { defaultBridge: { name: 'berthb12d9', subnet: '10.233.99.0/24' } });
    await r.mgr.create({ name: 'dual', ipv6: true, subnets: ['10.233.90.0/24', 'fd00:b12:90::/64'], options: { 'com.docker.network.bridge.name': 'berthb12n9' } });
    const id = newId();
    r.ctrs.push(id);
    const s = await attachReq(r.mgr, { id, name: 'web6', hostname: 'web6', request: { networks: ['dual'], publish: ['[::1]:19201:80', '19202:80'] } });
    expect(s.ports.map((p) => `${p.hostIp} ${p.hostPort}`)).toEqual(['::1 19201', '0.0.0.0 19202']);
    const www = path.join(r.root, 'www');
    await mkdir(www);
    await writeFile(path.join(www, 'index.html'), 'hello from web6\n');
    const httpd = execa('nsenter', [`--net=${s.netnsPath}`, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], { reject: false });
    try {
      const get = async (url: string, netns?: string) => {
        const args = ['timeout', '5', 'busybox', 'wget', '-qO-', url];
        for (let i = 0; i < 50; i++) {
          const res = await execa(netns ? 'nsenter' : args[0]!, netns ? [`--net=${netns}`, ...args] : args.slice(1), { reject: false });
          if (res.exitCode === 0) return res.stdout;
          await new Promise((ok) => setTimeout(ok, 100));
        }
        return 'no answer';
      };
      expect(await get('http://[::1]:19201/')).toBe('hello from web6');
      expect(await get('http://[::1]:19202/')).toBe('hello from web6');
      expect(await get('http://127.0.0.1:19202/')).toBe('hello from web6');
      // From another container, through the host's IPv6 address on the bridge: the ip6tables DNAT.
      const other = newId();
      r.ctrs.push(other);
      const o = await attachReq(r.mgr, { id: other, name: 'client', hostname: 'client', request: { networks: ['dual'] } });
      expect(await get('http://[fd00:b12:90::1]:19202/', o.netnsPath)).toBe('hello from web6');
      expect((await save('ip6tables-save')).split('\n').filter((l) => l.includes(`berth:${id}`) && l.includes('DNAT --to-destination'))).toHaveLength(1);
      await r.mgr.detach(other);
    } finally {
      httpd.kill('SIGKILL');
      await httpd;
    }
    await r.mgr.detach(id);
    // [::1]:PORT held by someone else: the proxy cannot bind, the attach fails and leaves nothing.
    const holder = createServer();
    await new Promise<void>((ok) => holder.listen({ host: '::1', port: 19204, ipv6Only: true }, ok));
    try {
      const busy = newId();
      r.ctrs.push(busy);
      const failed = attachReq(r.mgr, { id: busy, name: 'busy', hostname: 'busy', request: { networks: ['dual'], publish: ['19204:80'] } });
      await expect(failed).rejects.toThrow(BadStateError);
      await expect(failed).rejects.toThrow('host port [::1]:19204/tcp could not be bound');
      expect(`${await save()}${await save('ip6tables-save')}`.includes(`berth:${busy}`)).toBe(false);
      expect(await r.mgr.status(busy)).toBeUndefined();
    } finally {
      await new Promise((ok) => holder.close(ok));
    }
    expect((await save('ip6tables-save')).includes(`berth:${id}`)).toBe(false);
    expect((await save()).includes(`berth:${id}`)).toBe(false);
    expect((await run('ps', ['-eo', 'args'])).stdout).not.toMatch(/socat TCP6-LISTEN:1920[12]/);
  });
});
