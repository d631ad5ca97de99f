import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../src/util/exec.js';
import { attachReq, destroyEnv, inNetns, linesWith, makeEnv, newId, save, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

describe('firewall', () => {
  it('isolates two Berth networks from each other', async () => {
    env = await makeEnv(4);
    await env.mgr.create({ name: 'red', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('r') } });
    await env.mgr.create({ name: 'blue', subnets: [env.subnet(1)], options: { 'com.docker.network.bridge.name': env.bridge('b') } });
    const [r1, r2, b1] = [newId(), newId(), newId()];
    const a = await attachReq(env.mgr, { id: r1, name: 'r1', hostname: 'r1', exposedPorts: [], request: { networks: ['red'] } });
    const a2 = await attachReq(env.mgr, { id: r2, name: 'r2', hostname: 'r2', exposedPorts: [], request: { networks: ['red'] } });
    const b = await attachReq(env.mgr, { id: b1, name: 'b1', hostname: 'b1', exposedPorts: [], request: { networks: ['blue'] } });
    await env.noteInterfaces();
    expect((await inNetns(a.netnsPath!, ['busybox', 'ping', '-c1', '-W1', a2.endpoints[0]!.ipv4!])).code).toBe(0);
    expect((await inNetns(a.netnsPath!, ['busybox', 'ping', '-c1', '-W1', b.endpoints[0]!.ipv4!])).code).not.toBe(0);
    const rules = await save();
    expect(linesWith(rules, `-A ${env.prefix}-ISOLATION-1 -i ${env.bridge('r')} ! -o ${env.bridge('r')}`)).toHaveLength(1);
    expect(linesWith(rules, `-A ${env.prefix}-ISOLATION-2 -o ${env.bridge('b')}`)).toHaveLength(1);
    // The names of one network do not resolve on another.
    const other = await inNetns(b.netnsPath!, ['busybox', 'nslookup', 'r1', b.endpoints[0]!.gateway!]);
    expect(other.out).not.toContain(a.endpoints[0]!.ipv4!);
    for (const id of [r1, r2, b1]) await env.mgr.detach(id);
  });

  it('gives internal networks no way out and icc=false networks no way across', async () => {
    env = await makeEnv(5);
    await env.mgr.create({ name: 'inner', internal: true, subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('i') } });
    await env.mgr.create({ name: 'quiet', subnets: [env.subnet(1)], options: { 'com.docker.network.bridge.name': env.bridge('q'), 'com.docker.network.bridge.enable_icc': 'false' } });
    const [i1, q1, q2] = [newId(), newId(), newId()];
    const si = await attachReq(env.mgr, { id: i1, name: 'i1', hostname: 'i1', exposedPorts: [], request: { networks: ['inner'] } });
    const s1 = await attachReq(env.mgr, { id: q1, name: 'q1', hostname: 'q1', exposedPorts: [], request: { networks: ['quiet'] } });
    await attachReq(env.mgr, { id: q2, name: 'q2', hostname: 'q2', exposedPorts: [], request: { networks: ['quiet'] } });
    await env.noteInterfaces();
    const rules = await save();
    expect(linesWith(rules, `-s ${env.subnet(0)} `).filter((l) => l.includes('MASQUERADE'))).toEqual([]);
    expect(linesWith(rules, `-s ${env.subnet(1)} `).filter((l) => l.includes('MASQUERADE'))).toHaveLength(1);
    expect(linesWith(rules, `-i ${env.bridge('i')} ! -o ${env.bridge('i')}`).some((l) => l.endsWith('-j DROP'))).toBe(true);
    expect(linesWith(rules, `-i ${env.bridge('q')} -o ${env.bridge('q')}`).some((l) => l.endsWith('-j DROP'))).toBe(true);
    // No default route on an internal network.
    expect((await inNetns(si.netnsPath!, ['ip', 'route'])).out).not.toContain('default');
    // icc=false: the bridge hands the frame to iptables (br_netfilter), which drops it.
    const netfilterOnBridge = (await run('cat', ['/proc/sys/net/bridge/bridge-nf-call-iptables']).catch(() => ({ stdout: '0' }))).stdout.trim() === '1';
    if (netfilterOnBridge) {
      const ipQ2 = (await env.mgr.status(q2))!.endpoints[0]!.ipv4!;
      expect((await inNetns(s1.netnsPath!, ['busybox', 'ping', '-c1', '-W1', ipQ2])).code).not.toBe(0);
    }
    for (const id of [i1, q1, q2]) await env.mgr.detach(id);
  });

  it('reload puts back exactly one copy of each jump rule', async () => {
    env = await makeEnv(6);
    const id = newId();
    await attachReq(env.mgr, { id, name: 'c', hostname: 'c', exposedPorts: [], request: { publish: ['127.0.0.1::80'] } });
    await env.noteInterfaces();
    const jump = `-m comment --comment "berth:${env.prefix}" -j ${env.prefix}-FORWARD`;
    const count = async () => linesWith(await save(), `-A FORWARD ${jump}`).length;
    expect(await count()).toBe(1);
    await run('iptables', ['-D', 'FORWARD', ...['-m', 'comment', '--comment', `berth:${env.prefix}`, '-j', `${env.prefix}-FORWARD`]]);
    await run('iptables', ['-t', 'nat', '-F', `${env.prefix}-DNAT`]);
    expect(await count()).toBe(0);
    const { reloaded } = await env.mgr.reload();
    expect(reloaded).toEqual([id]);
    expect(await count()).toBe(1);
    expect(linesWith(await save(), `berth:${id}`).filter((l) => l.includes('DNAT --to-destination'))).toHaveLength(1);
    await run('iptables', ['-I', 'FORWARD', '1', '-m', 'comment', '--comment', `berth:${env.prefix}`, '-j', `${env.prefix}-FORWARD`]);
    expect(await count()).toBe(2);
    await env.mgr.reload();
    expect(await count()).toBe(1);
    await env.mgr.detach(id);
  });
});
