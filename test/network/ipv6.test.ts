import { afterEach, describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError } from '../../src/errors.js';
import { run } from '../../src/util/exec.js';
import { attachReq, destroyEnv, inNetns, linesWith, makeEnv, newId, save, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

const attach = (e: NetEnv, id: string, name: string, network: string, extra: { ip6?: string } = {}) =>
  attachReq(e.mgr, { id, name, hostname: name, exposedPorts: [], request: { networks: [network], ...extra } });

const ping6 = (netns: string, addr: string) => inNetns(netns, ['busybox', 'ping', '-6', '-c1', '-W2', addr]);
const bare = (cidr: string) => cidr.split('/')[0]!;

describe('IPv6 dual stack', () => {
  it('connects two sandboxes over IPv6, names them, and isolates another IPv6 network', async () => {
    env = await makeEnv(20);
    const [s6a, s6b] = [env.subnet6(0), env.subnet6(1)];
    await env.mgr.create({ name: 'ds', ipv6: true, subnets: [env.subnet(0), s6a], options: { 'com.docker.network.bridge.name': env.bridge('a') } });
    await env.mgr.create({ name: 'other', ipv6: true, subnets: [env.subnet(1), s6b], options: { 'com.docker.network.bridge.name': env.bridge('b') } });
    const net = await env.mgr.inspect('ds');
    expect(net.ipv6).toBe(true);
    expect(net.subnets).toEqual([{ subnet: env.subnet(0), gateway: env.subnet(0).replace(/0\/24$/, '1') }, { subnet: s6a, gateway: s6a.replace('::/64', '::1') }]);

    const [c1, c2, o1] = [newId(), newId(), newId()];
    const a = await attach(env, c1, 'c1', 'ds');
    const b = await attach(env, c2, 'c2', 'ds');
    const o = await attach(env, o1, 'o1', 'other');
    await env.noteInterfaces();
    expect(a.endpoints[0]!.ipv6).toBe(s6a.replace('::/64', '::2/64'));
    expect(b.endpoints[0]!.ipv6).toBe(s6a.replace('::/64', '::3/64'));
    expect(a.endpoints[0]!.ipv4).toBeDefined();
    expect(a.hostsFile).toContain(`${bare(a.endpoints[0]!.ipv6!)}\tc1`);
    expect((await env.mgr.inspect('ds')).containers[c2]!.ipv6).toBe(b.endpoints[0]!.ipv6);

    // On-link and through the gateway: the default IPv6 route goes to the bridge.
    expect((await ping6(a.netnsPath!, bare(b.endpoints[0]!.ipv6!))).code).toBe(0);
    expect((await ping6(a.netnsPath!, s6a.replace('::/64', '::1'))).code).toBe(0);
    expect((await inNetns(a.netnsPath!, ['ip', '-6', 'route'])).out).toContain(`default via ${s6a.replace('::/64', '::1')} dev eth0`);
    // The other network is routed by the host but dropped by the isolation chains.
    expect((await ping6(a.netnsPath!, bare(o.endpoints[0]!.ipv6!))).code).not.toBe(0);
    expect((await ping6(o.netnsPath!, bare(a.endpoints[0]!.ipv6!))).code).not.toBe(0);

    // AAAA from the network's name server (which listens on the IPv4 gateway).
    const aaaa = await inNetns(a.netnsPath!, ['busybox', 'nslookup', '-type=aaaa', 'c2', a.endpoints[0]!.gateway!]);
    expect(aaaa.out).toContain(bare(b.endpoints[0]!.ipv6!));

    const rules = await save('ip6tables-save');
    expect(linesWith(rules, `-A ${env.prefix}-ISOLATION-1 -i ${env.bridge('a')} ! -o ${env.bridge('a')}`)).toHaveLength(1);
    expect(linesWith(rules, `-A ${env.prefix}-POSTROUTING -s ${s6a} ! -o ${env.bridge('a')}`)).toHaveLength(1);
    expect(linesWith(rules, `-A FORWARD -m comment --comment "berth:${env.prefix}" -j ${env.prefix}-FORWARD`)).toHaveLength(1);
    for (const id of [c1, c2, o1]) await env.mgr.detach(id);
  });

  it('gives internal IPv6 networks no masquerade and no route out; removes the chains with the last IPv6 network', async () => {
    env = await makeEnv(21);
    const s6 = env.subnet6(0);
    await env.mgr.create({ name: 'in6', ipv6: true, internal: true, subnets: [env.subnet(0), s6], options: { 'com.docker.network.bridge.name': env.bridge('i') } });
    const id = newId();
    const st = await attach(env, id, 'i1', 'in6');
    await env.noteInterfaces();
    const rules = await save('ip6tables-save');
    expect(linesWith(rules, 'MASQUERADE').filter((l) => l.includes(env!.prefix) || l.includes(s6))).toEqual([]);
    expect(linesWith(rules, `-i ${env.bridge('i')} ! -o ${env.bridge('i')}`).some((l) => l.endsWith('-j DROP'))).toBe(true);
    expect((await inNetns(st.netnsPath!, ['ip', '-6', 'route'])).out).not.toContain('default');
    expect((await ping6(st.netnsPath!, s6.replace('::/64', '::1'))).code).toBe(0);
    await env.mgr.detach(id);
    await env.mgr.remove('in6');
    // No IPv6 network left: no chains, no jumps, no gateway address.
    expect(linesWith(await save('ip6tables-save'), env.prefix)).toEqual([]);
    expect((await run('ip', ['-6', 'addr'])).stdout).not.toContain(s6.replace('::/64', '::'));
  });

  it('validates IPv6 requests and allocates from the ULA pool when no IPv6 subnet is given', async () => {
    env = await makeEnv(22);
    const s6 = env.subnet6(0);
    const opts = (s: string) => ({ 'com.docker.network.bridge.name': env!.bridge(s) });
    await expect(env.mgr.create({ name: 'x', subnets: [env.subnet(0), s6] })).rejects.toThrow(new RegExp(`${s6.replace(/\//, '\\/')} is IPv6`));
    await expect(env.mgr.create({ name: 'x', ipv6: true, subnets: [env.subnet(0), 'fd42:7e57::/40'] })).rejects.toThrow(InvalidArgumentError);
    await expect(env.mgr.create({ name: 'x', ipv6: true, subnets: [env.subnet(0), s6], gateways: [env.subnet6(1).replace('::/64', '::1')] })).rejects.toThrow(/not a host address/);
    await env.mgr.create({ name: 'six', ipv6: true, subnets: [env.subnet(0), s6], options: opts('s') });
    await expect(env.mgr.create({ name: 'clash', ipv6: true, subnets: [env.subnet(1), s6.replace('::/64', '::/48')] })).rejects.toThrow(/overlaps network six/);
    const auto = await env.mgr.create({ name: 'auto', ipv6: true, options: opts('u') });
    const autoNet = await env.mgr.inspect(auto.id);
    expect(autoNet.subnets[1]!.subnet).toMatch(/^fd00:b5e7:(0:[0-9a-f]+:)?:\/64$/);
    await env.mgr.create({ name: 'v4only', subnets: [env.subnet(2)], options: opts('4') });

    const [s1, s2, s3] = [newId(), newId(), newId()];
    const fixed = s6.replace('::/64', '::abc');
    const st = await attach(env, s1, 's1', 'six', { ip6: fixed.toUpperCase() });
    await env.noteInterfaces();
    expect(st.endpoints[0]!.ipv6).toBe(`${fixed}/64`);
    expect((await inNetns(st.netnsPath!, ['ip', '-6', 'addr', 'show', 'eth0'])).out).toContain(`${fixed}/64`);
    await expect(attach(env, s2, 's2', 'six', { ip6: fixed })).rejects.toThrow(BadStateError);
    await expect(attach(env, s2, 's2', 'six', { ip6: env.subnet6(1).replace('::/64', '::5') })).rejects.toThrow(InvalidArgumentError);
    await expect(attach(env, s3, 's3', 'v4only', { ip6: fixed })).rejects.toThrow(/has no IPv6 subnet/);
    // A failed attach leaves nothing, not even its IPv4 address.
    expect(Object.keys((await env.mgr.inspect('six')).containers)).toEqual([s1]);

    // connect: a dual-stack second endpoint on a running sandbox.
    const v4 = await attach(env, s3, 's3', 'v4only');
    await env.noteInterfaces();
    const connected = await env.mgr.connect('six', s3, { ip6: s6.replace('::/64', '::77') });
    expect(connected.endpoints[1]!.ipv6).toBe(`${s6.replace('::/64', '::77')}/64`);
    expect((await ping6(v4.netnsPath!, fixed)).code).toBe(0);
    await env.mgr.disconnect('six', s3);
    await env.mgr.connect('six', s3, { ip6: s6.replace('::/64', '::77') }); // freed by the disconnect
    await env.noteInterfaces();
    for (const id of [s1, s3]) await env.mgr.detach(id);
  });

  it('gives 10 parallel attaches distinct IPv6 addresses, and reload restores the IPv6 jumps', async () => {
    env = await makeEnv(23);
    await env.mgr.create({ name: 'many', ipv6: true, subnets: [env.subnet(0), env.subnet6(0)], options: { 'com.docker.network.bridge.name': env.bridge('m') } });
    const ids = Array.from({ length: 10 }, () => newId());
    const sts = await Promise.all(ids.map((id, i) => attach(env!, id, `m${i}`, 'many')));
    await env.noteInterfaces();
    const v6 = sts.map((s) => s.endpoints[0]!.ipv6!);
    expect(new Set(v6).size).toBe(10);
    expect((await ping6(sts[9]!.netnsPath!, bare(v6[0]!))).code).toBe(0);

    const jump = ['-m', 'comment', '--comment', `berth:${env.prefix}`, '-j', `${env.prefix}-FORWARD`];
    const count = async () => linesWith(await save('ip6tables-save'), `-A FORWARD -m comment --comment "berth:${env!.prefix}" -j ${env!.prefix}-FORWARD`).length;
    await run('ip6tables', ['-D', 'FORWARD', ...jump]);
    expect(await count()).toBe(0);
    await env.mgr.reload();
    expect(await count()).toBe(1);
    // A crash: reconcile with nobody alive frees every address of both families.
    await env.mgr.reconcile(new Set());
    expect((await env.mgr.inspect('many')).containers).toEqual({});
    const again = await attach(env, ids[0]!, 'm0', 'many');
    await env.noteInterfaces();
    expect(again.endpoints[0]!.ipv6).toBeDefined();
    await env.mgr.detach(ids[0]!);
  });
});
