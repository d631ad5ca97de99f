/**
 * Issue 9: the network flags are parsed once, at create (`plan`), and `attach` builds from the plan.
 * With real managers: a refused plan leaves nothing, a plan outlives nothing it names, and sandboxes
 * written before plans existed (they kept the raw request) still come down whole.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { attachReq, destroyEnv, linesWith, makeEnv, newId, save, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

/** Every file under the env's volatile network folder (sandboxes, addresses, ports, names). */
async function netFiles(e: NetEnv): Promise<string[]> {
  const root = path.join(e.layout.runroot, 'net');
  const out: string[] = [];
  for (const dir of await readdir(root).catch(() => [] as string[])) {
    for (const f of await readdir(path.join(root, dir), { recursive: true }).catch(() => [] as string[])) out.push(`${dir}/${f}`);
  }
  return out;
}

describe('plan on a real manager', () => {
  it('refuses at plan, leaving nothing behind; what passes builds the planned sandbox', async () => {
    env = await makeEnv(50);
    const { mgr } = env;
    await mgr.create({ name: 'app', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('a') } });
    const before = await netFiles(env);
    const none = { exposedPorts: [] };
    await expect(mgr.plan({ networks: ['nosuch'] }, none)).rejects.toThrow(NotFoundError);
    await expect(mgr.plan({ networks: ['app'], ip: env.subnet(1).replace('.0/24', '.9') }, none)).rejects.toThrow(/no configured subnet or ip-range contain/);
    await expect(mgr.plan({ networks: ['app'], ip: env.subnet(0).replace('.0/24', '.1') }, none)).rejects.toThrow(/is the gateway of network app/);
    await expect(mgr.plan({ ip: `10.232.${env.n}.9` }, none)).rejects.toThrow(/user specified IP address is supported on user defined networks only/);
    await expect(mgr.plan({ publish: ['70000:80'] }, none)).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.plan({ publishAll: true }, { exposedPorts: ['abc'] })).rejects.toThrow(InvalidArgumentError);
    await expect(mgr.plan({ publish: ['18950:80', '18950:81'] }, none)).rejects.toThrow(/Bind for 0\.0\.0\.0:18950 failed: port is already allocated/);
    await expect(mgr.plan({ networks: ['app'], ip6: 'fd42::9' }, none)).rejects.toThrow(/no IPv6 subnet/);
    expect(await netFiles(env)).toEqual(before);

    const ip = env.subnet(0).replace('.0/24', '.77');
    const plan = await mgr.plan({ networks: ['app'], ip, aliases: ['web'], publish: ['127.0.0.1:18951-18952:80-81'] }, { exposedPorts: ['80/tcp'] });
    expect(await netFiles(env)).toEqual(before);
    const id = newId();
    const st = await mgr.attach({ id, name: 'c', hostname: 'c', plan: JSON.parse(JSON.stringify(plan)) });
    await env.noteInterfaces();
    expect(st.endpoints[0]).toMatchObject({ network: 'app', ipv4: ip, aliases: ['web'] });
    expect(st.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}`)).toEqual(['127.0.0.1:18951->80', '127.0.0.1:18952->81']);
    await mgr.detach(id);
  });

  it('attach refuses a plan whose network was removed since, even if made again under its name', async () => {
    env = await makeEnv(51);
    const { mgr } = env;
    await mgr.create({ name: 'gone', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('g') } });
    const plan = await mgr.plan({ networks: ['gone'] }, { exposedPorts: [] });
    await mgr.remove('gone');
    await mgr.create({ name: 'gone', subnets: [env.subnet(1)], options: { 'com.docker.network.bridge.name': env.bridge('h') } });
    const id = newId();
    await expect(mgr.attach({ id, name: 'c', hostname: 'c', plan })).rejects.toThrow(NotFoundError);
    expect((await netFiles(env)).filter((f) => f.startsWith('sandboxes/') || f.startsWith('ports/'))).toEqual([]);
    expect(existsSync(mgr.netnsPathOf(id))).toBe(false);
  });

  it('detaches and reconciles sandboxes written before plans (they kept the raw request)', async () => {
    env = await makeEnv(52);
    const { mgr } = env;
    await mgr.create({ name: 'old', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('o') } });
    const request = { networks: ['old'], publish: ['127.0.0.1:18953:80'], dns: ['10.9.9.9'], addHost: ['gw:host-gateway'] };
    const ids = [newId(), newId()];
    for (const id of ids) {
      await attachReq(mgr, { id, name: id.slice(0, 5), hostname: 'h', request: id === ids[0] ? request : { networks: ['old'] } });
    }
    await env.noteInterfaces();
    // Rewrite the records as the code before NetworkPlan wrote them.
    for (const id of ids) {
      const file = path.join(env.layout.runroot, 'net', 'sandboxes', `${id}.json`);
      const rec = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      delete rec.plan;
      await writeFile(file, JSON.stringify({ ...rec, request: id === ids[0] ? request : { networks: ['old'] }, exposedPorts: [] }));
    }
    const st = await mgr.status(ids[0]!);
    expect(st!.resolvConf).toContain('nameserver 10.9.9.9');
    expect(st!.hostsFile).toContain(`${env.subnet(0).replace('.0/24', '.1')}\tgw`);
    expect(linesWith(await save(), `berth:${ids[0]}`).length).toBeGreaterThan(0);
    await mgr.detach(ids[0]!);
    expect(linesWith(await save(), `berth:${ids[0]}`)).toEqual([]);
    expect(await mgr.reconcile(new Set())).toEqual([`sandbox ${ids[1]}`]);
    expect((await netFiles(env)).filter((f) => f.startsWith('sandboxes/') || f.startsWith('ports/'))).toEqual([]);
  });
});
