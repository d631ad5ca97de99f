import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { httpGet } from '../helpers/http.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostNames } from '../../src/paths.js';
import { sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

let t: TestEngine;
const slot = 3000 + (process.pid % 500);
const net = (k: number) => `10.${240 + k}.${slot % 250}.0/24`;

beforeAll(async () => {
  t = await testEngine(slot);
  await t.engine.images.ensureDefault();
  await t.engine.networks.create({ name: 'appnet', subnets: [net(0)] });
  await t.engine.networks.create({ name: 'othernet', subnets: [net(1)] });
});
afterAll(async () => {
  await t?.cleanup();
  if (t) expect(await findLeaks(t.root, t.runroot, { final: true })).toEqual([]);
});

async function sh(cmd: string, extra: Record<string, unknown> = {}) {
  const out = sink();
  const res = await t.engine.run({ image: 'busybox', command: ['sh', '-c', cmd], autoRemove: true, ...extra }, { io: { stdout: out.stream, stderr: out.stream } });
  return { code: res.exitCode, out: out.text() };
}

const get = (port: number) => httpGet(port);

async function getWithRetry(port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try { return await get(port); } catch (err) { last = err; await new Promise((r) => setTimeout(r, 100)); }
  }
  throw last;
}

const httpd = (text: string) => ['sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

describe('container networking through the engine', () => {
  it('finds containers by name and alias on a user-defined network, and isolates other networks', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 'db', command: ['sleep', '300'], network: { networks: ['appnet'], aliases: ['database'] } }, { detach: true });
    const dbIp = (await t.engine.containers.inspect('db')).NetworkSettings.IPAddress as string;
    expect(dbIp.startsWith(net(0).split('.').slice(0, 3).join('.'))).toBe(true);

    const byName = await sh('ping -c1 -W2 db >/dev/null && nslookup database | tail -n +3', { network: { networks: ['appnet'] } });
    expect(byName.code).toBe(0);
    expect(byName.out).toContain(dbIp);

    const across = await sh(`ping -c1 -W1 ${dbIp}`, { network: { networks: ['othernet'] } });
    expect(across.code).not.toBe(0);
  });

  it('publishes a port on 127.0.0.1 and answers hairpin traffic from the container itself', async () => {
    const port = 20000 + (slot % 10000);
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'web', command: httpd('published'), network: { publish: [`127.0.0.1:${port}:80`] } }, { detach: true });
    expect(await getWithRetry(port)).toBe('published\n');
    expect(await t.engine.containers.port('web')).toEqual([{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }]);
    await expect(t.engine.containers.run({ image: 'busybox', command: ['true'], network: { publish: [`127.0.0.1:${port}:80`] } }, { detach: true }))
      .rejects.toThrow(new RegExp(String(port)));
    await t.engine.containers.remove('web', { force: true });
  });

  it('answers a container that reaches its own published port through the host (hairpin)', async () => {
    const port = 21000 + (slot % 10000);
    // Published on every host address, as docker -p PORT:80; the gateway is one of the host's addresses.
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'hairpin', command: httpd('hairpin'), network: { publish: [`${port}:80`] } }, { detach: true });
    expect(await getWithRetry(port)).toBe('hairpin\n');
    const gw = (await t.engine.containers.inspect(id)).NetworkSettings.Gateway as string;
    const out = sink();
    await t.engine.containers.exec(id, { command: ['sh', '-c', `timeout 3 wget -q -O - http://${gw}:${port}/ || echo failed`] }, { stdout: out.stream });
    expect(out.text()).toBe('hairpin\n');
    await t.engine.containers.remove(id, { force: true });
  });

  it('links containers on the default bridge with hosts entries and Docker link variables', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 'linked', command: httpd('linked') }, { detach: true });
    const ip = (await t.engine.containers.inspect('linked')).NetworkSettings.IPAddress as string;
    const r = await sh('grep -w srv /etc/hosts; echo $SRV_NAME; wget -q -O - http://srv/', { network: { links: ['linked:srv'] } });
    expect(r.out).toContain(ip);
    expect(r.out).toContain('/linked/srv');
    expect(r.out).toContain('linked\n');
  });

  it('shares another container\'s network namespace, loopback included', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 'owner', network: { networks: ['none'] },
      command: ['sh', '-c', 'mkdir /www && echo loop > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www'] }, { detach: true });
    const r = await sh('for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1', { network: { networks: ['container:owner'] } });
    expect(r.out).toBe('loop\n');
  });

  it('starts twenty containers at once on one network, each with its own address', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      t.engine.containers.run({ image: 'busybox', name: `many${i}`, command: ['sleep', '300'], network: { networks: ['appnet'] } }, { detach: true })));
    const ips = await Promise.all(results.map(async (r) => (await t.engine.containers.inspect(r.id)).NetworkSettings.IPAddress as string));
    expect(new Set(ips).size).toBe(20);
    expect((await t.engine.containers.list({ filters: ['name=many'] })).length).toBe(20);
    await Promise.all(results.map((r) => t.engine.containers.remove(r.id, { force: true })));
    const ids = results.map((r) => r.id.slice(0, 12));
    const rules = execFileSync('iptables-save', { encoding: 'utf8' });
    expect(ids.filter((id) => rules.includes(id))).toEqual([]);
  });

  it('puts back its rules after a firewall deletes them, once', async () => {
    // Below the kernel's ephemeral range (32768-60999), where no outgoing connection can hold it.
    const port = 29000 + (slot % 500);
    const prefix = hostNames(t.root).chainPrefix;
    await t.engine.containers.run({ image: 'busybox', name: 'reloaded', command: httpd('again'), network: { publish: [`127.0.0.1:${port}:80`] } }, { detach: true });
    expect(await getWithRetry(port)).toBe('again\n');
    // A firewall script that deletes this root's jumps from the built-in chains (tests never flush tables,
    // and never touch another root's rules).
    const ours = (l: string) => l.startsWith('-A OUTPUT') && l.includes(`-j ${prefix}`);
    const jumps = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).split('\n').filter(ours);
    expect(jumps.length).toBeGreaterThan(0);
    for (const rule of jumps) execFileSync('iptables', ['-t', 'nat', '-D', ...shellWords(rule.slice(3))]);
    await expect(get(port)).rejects.toThrow();
    await t.engine.networks.reload({ all: true });
    await t.engine.networks.reload({ all: true });
    expect(await getWithRetry(port)).toBe('again\n');
    const after = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).split('\n').filter(ours);
    expect(after.sort()).toEqual(jumps.sort());
  });

  it('leaves no sandbox behind once its containers are gone', async () => {
    for (const c of await t.engine.containers.list({ all: true })) await t.engine.containers.remove(c.id, { force: true });
    const netns = await readFile('/proc/self/mounts', 'utf8');
    expect(netns.split('\n').filter((l) => l.includes(t.runroot) && l.includes('netns'))).toEqual([]);
  });
});

/** iptables-save quotes comments; split its lines as a shell would. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}
