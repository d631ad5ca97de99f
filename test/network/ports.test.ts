import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadStateError } from '../../src/errors.js';
import { attachReq, destroyEnv, inNetns, linesWith, makeEnv, newId, save, spawnInNetns, type NetEnv } from './helpers.js';

let env: NetEnv | undefined;
afterEach(async () => { if (env) await destroyEnv(env); env = undefined; });

function get(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function getEventually(host: string, port: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 40; i++) {
    try { return await get(host, port); } catch (err) { last = err; await new Promise((r) => setTimeout(r, 50)); }
  }
  throw last;
}

async function startHttpd(e: NetEnv, netns: string, text: string): Promise<void> {
  const dir = path.join(e.root, `www-${text}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.html'), text);
  spawnInNetns(e, netns, ['busybox', 'httpd', '-f', '-p', '80', '-h', dir]);
}

describe('published ports', () => {
  it('reach a server in the sandbox from 127.0.0.1, the gateway address, and the container itself', async () => {
    env = await makeEnv(2);
    await env.mgr.create({ name: 'web', subnets: [env.subnet(0)], options: { 'com.docker.network.bridge.name': env.bridge('a') } });
    const id = newId();
    // Fixed ports below the kernel's ephemeral range (32768-60999), where no outgoing connection can hold them.
    const fixed = 31000 + env.n * 10;
    const st = await attachReq(env.mgr, {
      id, name: 'web1', hostname: 'web1', exposedPorts: ['80/tcp', '81/tcp'],
      request: { networks: ['web'], publish: ['127.0.0.1::80', `${fixed}:80`], publishAll: true },
    });
    await env.noteInterfaces();
    expect(st.ports.map((p) => `${p.hostIp}:${p.containerPort}`)).toEqual(['127.0.0.1:80', '0.0.0.0:80', '0.0.0.0:81']);
    const local = st.ports[0]!.hostPort;
    expect(st.ports[1]!.hostPort).toBe(fixed);
    expect(st.ports[2]!.hostPort).toBeGreaterThanOrEqual(1024);
    await startHttpd(env, st.netnsPath!, 'hello-berth');

    expect(await getEventually('127.0.0.1', local)).toBe('hello-berth');
    const gw = st.endpoints[0]!.gateway!;
    expect(await getEventually(gw, fixed)).toBe('hello-berth');
    const hairpin = await inNetns(st.netnsPath!, ['timeout', '5', 'busybox', 'wget', '-q', '-O', '-', `http://${gw}:${fixed}/`]);
    expect(hairpin.out).toBe('hello-berth');

    const rules = linesWith(await save(), `berth:${id}`);
    expect(rules.filter((l) => l.includes('DNAT --to-destination'))).toHaveLength(3);

    await env.mgr.detach(id);
    expect(linesWith(await save(), `berth:${id}`)).toEqual([]);
    await expect(get('127.0.0.1', local)).rejects.toThrow();
  });

  it('refuses a host port that is taken, before making anything', async () => {
    env = await makeEnv(3);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const id = newId();
      await expect(attachReq(env.mgr, { id, name: 'c1', hostname: 'c1', exposedPorts: [], request: { publish: [`${port}:80`] } }))
        .rejects.toThrow(BadStateError);
      expect(await env.mgr.status(id)).toBeUndefined();

      const holder = newId();
      const free = 31500 + env.n * 10;
      await attachReq(env.mgr, { id: holder, name: 'c2', hostname: 'c2', exposedPorts: [], request: { publish: [`${free}:80/udp`] } });
      await env.noteInterfaces();
      const err = await attachReq(env.mgr, { id: newId(), name: 'c3', hostname: 'c3', exposedPorts: [], request: { publish: [`127.0.0.1:${free}:53/udp`] } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadStateError);
      expect(String((err as Error).message)).toContain(holder.slice(0, 12));
      await env.mgr.detach(holder);
    } finally {
      srv.close();
    }
  });
});
