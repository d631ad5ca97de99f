import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { openNetworkManager, registerDriver, unregisterDriver, type NetworkDriver } from '../../src/network/index.js';
import { run } from '../../src/util/exec.js';
import { ownerTag } from '../../src/util/lock.js';
import { resolveLayout } from '../../src/paths.js';
import { attachReq, destroyEnv, inNetns, linesWith, makeEnv, managerFor, newId, save, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

describe('networks', () => {
  it('lists built-ins and checks create, remove and prune', async () => {
    env = await makeEnv(7);
    const { mgr } = env;
    expect((await mgr.list()).map((n) => n.name)).toEqual(['bridge', 'host', 'none']);
    expect((await mgr.inspect('bridge')).subnets).toEqual([{ subnet: `10.232.${env.n}.0/24`, gateway: `10.232.${env.n}.1` }]);
    await expect(mgr.remove('bridge')).rejects.toThrow(BadStateError);
    await expect(mgr.remove('nope')).rejects.toThrow(NotFoundError);
    const { id } = await mgr.create({ name: 'n1', subnets: [env.subnet(0)], labels: { team: 'a' }, options: { 'com.docker.network.bridge.name': env.bridge('a'), 'com.docker.network.driver.mtu': '1400' } });
    await expect(mgr.create({ name: 'n1' })).rejects.toThrow(AlreadyExistsError);
    await expect(mgr.create({ name: 'n3', subnets: [env.subnet(2)], options: { 'com.docker.network.bridge.name': env.bridge('a') } })).rejects.toThrow(/already used by network n1/);
    await expect(mgr.create({ name: 'n2', subnets: [env.subnet(0).replace('.0/24', '.128/25')] })).rejects.toThrow(/overlaps network n1/);
    await expect(mgr.create({ name: 'n2', subnets: ['10.0.0.1/24'] })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.create({ name: 'n2', subnets: ['10.0.0/24'] })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.create({ name: 'n2', subnets: [env.subnet(1)], gateways: ['10.9.9.1'] })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.create({ name: 'n2', subnets: [env.subnet(1)], options: { color: 'red' } })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.create({ name: 'n2', subnets: [env.subnet(1)], options: { 'com.docker.network.bridge.name': 'docker9' } })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.create({ name: 'n2', driver: 'warp' })).rejects.toThrow(NotFoundError);
    expect((await mgr.list({ filters: ['label=team=a'] })).map((n) => n.id)).toEqual([id]);
    expect((await mgr.inspect(id.slice(0, 6))).name).toBe('n1');

    const c = newId();
    const st = await attachReq(mgr, { id: c, name: 'c', hostname: 'c', exposedPorts: [], request: { networks: ['n1'], ip: env.subnet(0).replace('.0/24', '.77') } });
    await env.noteInterfaces();
    expect(st.endpoints[0]!.ipv4).toBe(env.subnet(0).replace('.0/24', '.77'));
    expect((await inNetns(st.netnsPath!, ['ip', 'link', 'show', 'eth0'])).out).toContain('mtu 1400');
    expect(Object.keys((await mgr.inspect('n1')).containers)).toEqual([c]);
    await expect(mgr.remove('n1')).rejects.toThrow(BadStateError);
    expect((await mgr.prune()).deleted).toEqual([]);
    await mgr.detach(c);
    expect((await mgr.prune()).deleted).toEqual(['n1']);
    expect(existsSync(`/sys/class/net/${env.bridge('a')}`)).toBe(false);
  });

  it('gives 20 parallel attaches 20 distinct addresses', async () => {
    env = await makeEnv(8);
    await env.mgr.create({ name: 'many', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('m') } });
    const ids = Array.from({ length: 20 }, newId);
    const sts = await Promise.all(ids.map((id, i) => attachReq(env!.mgr, { id, name: `c${i}`, hostname: `c${i}`, exposedPorts: [], request: { networks: ['many'] } })));
    await env.noteInterfaces();
    expect(new Set(sts.map((s) => s.endpoints[0]!.ipv4)).size).toBe(20);
    const last = sts[19]!;
    expect((await inNetns(sts[0]!.netnsPath!, ['busybox', 'ping', '-c1', '-W2', last.endpoints[0]!.ipv4!])).code).toBe(0);
    const r = await inNetns(sts[0]!.netnsPath!, ['busybox', 'nslookup', 'c19', last.endpoints[0]!.gateway!]);
    expect(r.out).toContain(`Address: ${last.endpoints[0]!.ipv4}`);
    await Promise.all(ids.map((id) => env!.mgr.detach(id)));
    expect(await readdir(path.join(env.layout.runroot, 'net', 'ipam', (await env.mgr.inspect('many')).id))).toEqual(['last']);
  });

  it('reconcile undoes the sandboxes of containers that are gone, even without their records', async () => {
    env = await makeEnv(9);
    await env.mgr.create({ name: 'rc', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('r') } });
    const [a, b, keep] = [newId(), newId(), newId()];
    for (const id of [a, b, keep]) await attachReq(env.mgr, { id, name: id.slice(0, 5), hostname: 'h', exposedPorts: [], request: { networks: ['rc'], publish: ['127.0.0.1::80'] } });
    await env.noteInterfaces();
    // A crash: a new process, and b's record lost as well.
    await rm(path.join(env.layout.runroot, 'net', 'sandboxes', `${b}.json`));
    const fresh = openNetworkManager(env.layout, { defaultBridge: { name: `bertht${env.n}d`, subnet: `10.232.${env.n}.0/24` }, chainPrefix: env.prefix });
    const cleaned = await fresh.reconcile(new Set([keep]));
    expect(cleaned).toEqual(expect.arrayContaining([`sandbox ${a}`, `netns ${b}`]));
    expect(cleaned.some((c) => c.startsWith('port '))).toBe(true);
    expect(existsSync(env.mgr.netnsPathOf(a))).toBe(false);
    expect(existsSync(env.mgr.netnsPathOf(b))).toBe(false);
    expect(existsSync(env.mgr.netnsPathOf(keep))).toBe(true);
    const rules = await save();
    expect(linesWith(rules, `berth:${a}`)).toEqual([]);
    expect(linesWith(rules, `berth:${b}`)).toEqual([]);
    expect(linesWith(rules, `berth:${keep}`).length).toBeGreaterThan(0);
    expect(await fresh.reconcile(new Set([keep]))).toEqual([]);
  });

  it('repair removes a network record\'s temp file left by a writer that was killed, never a live one\'s', async () => {
    env = await makeEnv(9);
    await env.mgr.create({ name: 'tmps', subnets: [env.subnet(1)], options: { 'com.docker.network.bridge.name': env.bridge('t') } });
    // ownedTempName's form: .tmp-<file>.<pid>.<starttime>.<12 hex>; pid 2^22+1 is above any pid Linux hands out.
    const dead = path.join(env.layout.networks, `.tmp-${'e'.repeat(64)}.json.4194305.1.0123456789ab`);
    const live = path.join(env.layout.networks, `.tmp-${'f'.repeat(64)}.json.${ownerTag().replace(' ', '.')}.0123456789ab`);
    await writeFile(dead, '{');
    await writeFile(live, '{');
    await env.mgr.repair();
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await rm(live);
  });

  it('a root deleted without system reset left its default bridge: a new root at that path makes it again', async () => {
    env = await makeEnv(14);
    const first = newId();
    await attachReq(env.mgr, { id: first, name: 'first', hostname: 'first', request: { networks: ['bridge'] }, exposedPorts: [] });
    await env.mgr.detach(first);
    const bridge = 'bertht14d';
    // The kernel removes a deleted netns's veth in the background: under load its host end can stay in the
    // bridge a moment, and a bridge with members is (rightly) never taken. A deleted root is old news.
    for (let i = 0; i < 100 && (await run('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.trim(); i++) await new Promise((r) => setTimeout(r, 100));
    const oldAlias = (await run('ip', ['-o', 'link', 'show', 'dev', bridge])).stdout;
    // `rm -rf` of the root's records: the bridge (named from the root's path) stays, naming a network no root has.
    await rm(env.layout.networks, { recursive: true, force: true });
    await rm(path.join(env.layout.runroot, 'net'), { recursive: true, force: true });
    env.mgr = managerFor(14, env.layout, env.prefix);
    const second = newId();
    const sb = await attachReq(env.mgr, { id: second, name: 'second', hostname: 'second', request: { networks: ['bridge'] }, exposedPorts: [] });
    const nowAlias = (await run('ip', ['-o', 'link', 'show', 'dev', bridge])).stdout;
    const bridgeNet = (await env.mgr.list()).find((n) => n.name === 'bridge')!;
    expect(nowAlias).toContain(`alias berth:${bridgeNet.id}`);
    expect(oldAlias).not.toContain(`alias berth:${bridgeNet.id}`);
    expect((await inNetns(sb.netnsPath!, ['busybox', 'ping', '-c1', '-W2', sb.endpoints[0]!.gateway!])).code).toBe(0);
    await env.mgr.detach(second);
  });

  it('a default bridge that still has members is never taken from another network', async () => {
    env = await makeEnv(15);
    const first = newId();
    await attachReq(env.mgr, { id: first, name: 'first', hostname: 'first', request: { networks: ['bridge'] }, exposedPorts: [] });
    await env.noteInterfaces();
    // A second root configured with the same bridge name (a mistake): the first root's container is on it.
    const otherMgr = managerFor(15, resolveLayout({ root: path.join(env.root, 'other'), runroot: path.join(env.root, 'other-run') }), `${env.prefix}O`);
    const second = newId();
    await expect(attachReq(otherMgr, { id: second, name: 'second', hostname: 'second', request: { networks: ['bridge'] }, exposedPorts: [] })).rejects.toThrow(/exists but was not made by it/);
    await otherMgr.reconcile(new Set());
    await otherMgr.shutdown().catch(() => {});
    await env.mgr.detach(first);
  });
});

describe('sandbox modes', () => {
  it('host, none, container:X and the default bridge with links', async () => {
    env = await makeEnv(10);
    const { mgr } = env;
    const h = await attachReq(mgr, { id: newId(), name: 'h', hostname: 'h', exposedPorts: [], request: { networks: ['host'], addHost: ['db:10.1.2.3'] } });
    expect(h.mode).toBe('host');
    expect(h.netnsPath).toBeUndefined();
    expect(h.hostsFile).toContain('10.1.2.3\tdb');

    const noneId = newId();
    const n = await attachReq(mgr, { id: noneId, name: 'n', hostname: 'n', exposedPorts: [], request: { networks: ['none'] } });
    expect(n.mode).toBe('none');
    // runc makes the netns (lo up); a container joining it names it through the owner's process.
    expect(n.netnsPath).toBeUndefined();
    const joiner = await attachReq(mgr, { id: newId(), name: 'nj', hostname: 'nj', exposedPorts: [], sharedWith: { id: noneId, pid: process.pid }, request: { networks: ['container:n'] } });
    expect(joiner.netnsPath).toBe(`/proc/${process.pid}/ns/net`);
    await expect(attachReq(mgr, { id: newId(), name: 'nk', hostname: 'nk', exposedPorts: [], sharedWith: { id: noneId }, request: { networks: ['container:n'] } }))
      .rejects.toThrow(BadStateError);

    const dbId = newId();
    const db = await attachReq(mgr, { id: dbId, name: 'db', hostname: 'db', exposedPorts: [], request: {} });
    await env.noteInterfaces();
    expect(db.resolvConf).not.toContain('127.');
    expect(db.resolvConf).toMatch(/^nameserver /);
    const app = await attachReq(mgr, {
      id: newId(), name: 'app', hostname: 'app', exposedPorts: [], links: [{ id: dbId, name: 'db', alias: 'database' }],
      request: { dns: ['10.9.9.9'], dnsSearch: ['corp.example'], dnsOption: ['ndots:1'], addHost: ['gw:host-gateway'] },
    });
    await env.noteInterfaces();
    expect(app.hostsFile).toContain(`${db.endpoints[0]!.ipv4}\tdatabase ${dbId.slice(0, 12)} db`);
    expect(app.hostsFile).toContain(`${app.endpoints[0]!.gateway}\tgw`);
    expect(app.resolvConf).toBe('nameserver 10.9.9.9\nsearch corp.example\noptions ndots:1\n');

    const side = await attachReq(mgr, { id: newId(), name: 'side', hostname: 'side', exposedPorts: [], sharedWith: { id: dbId }, request: { networks: [`container:db`] } });
    expect(side.mode).toBe('container');
    expect(side.netnsPath).toBe(db.netnsPath);
    await expect(attachReq(mgr, { id: newId(), name: 'x', hostname: 'x', exposedPorts: [], sharedWith: { id: dbId }, request: { networks: ['container:db'], publish: ['80'] } }))
      .rejects.toThrow(InvalidArgumentError);
    await expect(attachReq(mgr, { id: newId(), name: 'y', hostname: 'y', exposedPorts: [], request: { networks: ['bridge'], ip: '10.232.10.50' } }))
      .rejects.toThrow(/user defined networks/);
    await mgr.reconcile(new Set());
    expect(existsSync(db.netnsPath!)).toBe(false);
  });

  it('connect and disconnect change a running sandbox', async () => {
    env = await makeEnv(11);
    await env.mgr.create({ name: 'extra', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('x') } });
    const id = newId();
    const st = await attachReq(env.mgr, { id, name: 'c', hostname: 'c', exposedPorts: [], request: {} });
    const after = await env.mgr.connect('extra', id, { aliases: ['alt'] });
    await env.noteInterfaces();
    expect(after.endpoints.map((e) => `${e.network}/${e.interface}`)).toEqual(['bridge/eth0', 'extra/eth1']);
    expect((await inNetns(st.netnsPath!, ['ip', '-br', 'addr', 'show', 'eth1'])).out).toContain(after.endpoints[1]!.ipv4!);
    await expect(env.mgr.connect('extra', id)).rejects.toThrow(AlreadyExistsError);
    const back = await env.mgr.disconnect('extra', id);
    expect(back.endpoints).toHaveLength(1);
    expect((await inNetns(st.netnsPath!, ['ip', 'link', 'show', 'eth1'])).code).not.toBe(0);
    // A connect that fails half-way leaves nothing: the retry is not told "disconnect it first".
    await expect(env.mgr.connect('extra', id, { ip: '192.0.2.5' })).rejects.toThrow(/192\.0\.2\.5/);
    expect((await env.mgr.status(id))!.endpoints).toHaveLength(1);
    expect((await env.mgr.connect('extra', id)).endpoints).toHaveLength(2);
    await env.mgr.disconnect('extra', id);
    await env.mgr.detach(id);
  });
});

describe('drivers', () => {
  it('macvlan: two sandboxes on one parent reach each other', async () => {
    env = await makeEnv(12);
    // This kernel has no dummy links; one end of a veth pair named berth* serves as the parent.
    const parent = `bertht${env.n}mv`;
    env.extraLinks.push(parent);
    await run('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', `${parent}p`]);
    await run('ip', ['link', 'set', parent, 'up']);
    await run('ip', ['link', 'set', `${parent}p`, 'up']);
    await expect(env.mgr.create({ name: 'mv', driver: 'macvlan', subnets: [env.subnet(0)] })).rejects.toThrow(/parent/);
    await expect(env.mgr.create({ name: 'mv', driver: 'macvlan', subnets: [env.subnet(0)], options: { parent: 'berthnosuch' } })).rejects.toThrow(NotFoundError);
    await env.mgr.create({ name: 'mv', driver: 'macvlan', subnets: [env.subnet(0)], options: { parent } });
    const [a, b] = [newId(), newId()];
    const sa = await attachReq(env.mgr, { id: a, name: 'a', hostname: 'a', exposedPorts: [], request: { networks: ['mv'], mac: '02:42:0a:0b:0c:0d' } });
    const sb = await attachReq(env.mgr, { id: b, name: 'b', hostname: 'b', exposedPorts: [], request: { networks: ['mv'] } });
    expect(sa.endpoints[0]!.mac).toBe('02:42:0a:0b:0c:0d');
    expect((await inNetns(sa.netnsPath!, ['busybox', 'ping', '-c1', '-W2', sb.endpoints[0]!.ipv4!])).code).toBe(0);
    await env.mgr.detach(a);
    await env.mgr.detach(b);
    await env.mgr.remove('mv');
  });

  it('a registered third-party driver is used for its networks', async () => {
    env = await makeEnv(13);
    const calls: string[] = [];
    const loopAlias: NetworkDriver<{ note: string }> = {
      kind: 'loopalias', mode: 'private', needsSubnet: true, supportsDns: false,
      parseOptions: (raw) => ({ note: raw.note ?? 'none' }),
      async createNetwork(net) { calls.push(`create ${net.driverOptions.note}`); },
      async deleteNetwork() { calls.push('delete'); },
      async join(_net, ep, sandbox) { sandbox.inside([`addr add ${ep.ipv4}/32 dev lo`]); calls.push('join'); return {}; },
      async leave() { calls.push('leave'); },
    };
    registerDriver('loopalias', loopAlias);
    try {
      expect(() => registerDriver('loopalias', loopAlias)).toThrow(AlreadyExistsError);
      await env.mgr.create({ name: 'la', driver: 'loopalias', subnets: [env.subnet(0)], options: { note: 'hi' } });
      const id = newId();
      const st = await attachReq(env.mgr, { id, name: 'c', hostname: 'c', exposedPorts: [], request: { networks: ['la'] } });
      expect((await inNetns(st.netnsPath!, ['ip', '-br', 'addr', 'show', 'lo'])).out).toContain(st.endpoints[0]!.ipv4!);
      await env.mgr.detach(id);
      await env.mgr.remove('la');
      // Made at network create (as Docker), ensured again at the first join (driver methods are idempotent).
      expect(calls).toEqual(['create hi', 'create hi', 'join', 'leave', 'delete']);
    } finally {
      unregisterDriver('loopalias');
    }
  });
});
