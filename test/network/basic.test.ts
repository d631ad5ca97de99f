import { afterEach, describe, expect, it } from 'vitest';
import { attachReq, destroyEnv, inContainer, inNetns, makeEnv, newId, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

describe('user-defined bridge network', () => {
  it('lets two sandboxes reach each other by IP and by name', async () => {
    env = await makeEnv(1);
    await env.mgr.create({ name: 'n1', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('a') } });
    const a = newId();
    const b = newId();
    const sa = await attachReq(env.mgr, { id: a, name: 'alpha', hostname: a.slice(0, 12), request: { networks: ['n1'], aliases: ['web'] }, exposedPorts: [] });
    const sb = await attachReq(env.mgr, { id: b, name: 'beta', hostname: 'beta', domainname: 'example.org', request: { networks: ['n1'] }, exposedPorts: [] });
    await env.noteInterfaces();
    expect(sa.mode).toBe('private');
    const ipA = sa.endpoints[0]!.ipv4!;
    const ipB = sb.endpoints[0]!.ipv4!;
    expect(ipA).not.toBe(ipB);
    expect(sa.endpoints[0]!.gateway).toBe(env.subnet(0).replace('.0/24', '.1'));
    expect(sb.hostsFile).toContain(`${ipB}\tbeta.example.org beta ${b.slice(0, 12)}`);
    expect(sa.resolvConf).toMatch(new RegExp(`^nameserver ${sa.endpoints[0]!.gateway}\n`));
    expect(sb.hostname).toBe('beta\n');

    expect((await inNetns(sa.netnsPath!, ['busybox', 'ping', '-c1', '-W2', ipB])).code).toBe(0);
    const gw = sa.endpoints[0]!.gateway!;
    for (const [name, ip] of [['beta', ipB], [b.slice(0, 12), ipB], ['web', ipA], ['alpha', ipA]] as const) {
      const r = await inNetns(sb.netnsPath!, ['busybox', 'nslookup', name, gw]);
      expect(r.out, name).toContain(`Address: ${ip}`);
    }
    const byName = await inContainer(sa.netnsPath!, sa, env.root, 'busybox ping -c1 -W2 beta');
    expect(byName.out).toContain(ipB);
    expect(byName.code).toBe(0);

    await env.mgr.detach(b);
    const gone = await inNetns(sa.netnsPath!, ['busybox', 'nslookup', 'beta', gw]);
    expect(gone.out).not.toContain(`Address: ${ipB}`);
    await env.mgr.detach(a);
  });
});
