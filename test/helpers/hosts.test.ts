import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { hostNetnsLeft, linksIn, makeHosts, type Host, type Hosts } from './hosts.js';

let hosts: Hosts | undefined;
afterEach(async () => {
  const h = hosts;
  hosts = undefined;
  await h?.remove();
});

test('hosts reach each other and a service in the underlay netns over the underlay only; remove() leaves nothing', async () => {
  hosts = await makeHosts(2, { mtu: 1400 });
  const [a, b] = hosts.hosts as [Host, Host];
  const tag = hosts.underlay.netns.replace(/-ul$/, '');
  expect(a.address).not.toBe(b.address);
  expect(await linksIn(a.netnsPath)).toEqual(['lo', 'eth0']);
  expect((await a.exec(['ip', '-o', 'link', 'show', 'dev', 'eth0'])).stdout).toContain('mtu 1400');
  // One link, one on-link route: nothing else is reachable from a host.
  expect((await a.exec(['ip', 'route', 'show'])).stdout.trim()).toBe(`${hosts.underlay.subnet} dev eth0 proto kernel scope link src ${a.address}`);
  expect((await a.exec(['busybox', 'ping', '-c', '1', '-W', '2', b.address])).exitCode).toBe(0);

  // A service in the underlay netns, reached from a host, stopped by its pid.
  const srv = hosts.spawnIn('underlay', 'busybox', ['nc', '-l', '-p', '2379']);
  const got = new Promise<string>((resolve) => {
    let out = '';
    srv.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    srv.on('exit', () => resolve(out));
  });
  let sent = -1;
  for (let i = 0; i < 50 && sent !== 0; i++) {
    sent = (await a.exec(['sh', '-c', `echo hello-${a.name} | busybox nc ${hosts.underlay.address} 2379`], { timeout: 5000 })).exitCode;
    if (sent !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  expect(sent).toBe(0);
  expect(await got).toContain(`hello-${a.name}`);
  const idle = hosts.spawnIn(b, 'sleep', ['600']);
  expect(idle.pid).toBeGreaterThan(0);
  process.kill(idle.pid!, 'SIGKILL');

  // Nothing of the test in the machine's own netns.
  expect(readdirSync('/sys/class/net').filter((l) => l.includes(tag.slice(8)))).toEqual([]);
  const h = hosts;
  hosts = undefined;
  await h.remove();
  await h.remove(); // idempotent
  expect(hostNetnsLeft(`${tag}-`)).toEqual([]);
}, 120_000);

test('etcd runs in the underlay netns; every host reads what another wrote; it stops by its pid', async () => {
  hosts = await makeHosts(2);
  const [a, b] = hosts.hosts as [Host, Host];
  const data = await mkdtemp(path.join(tmpdir(), 'berth-etcd-'));
  try {
    const at = hosts.underlay.address;
    const etcd = hosts.spawnIn('underlay', 'etcd', [
      '--name', 'u', '--data-dir', path.join(data, 'd'),
      '--listen-client-urls', `http://${at}:2379`, '--advertise-client-urls', `http://${at}:2379`,
      '--listen-peer-urls', `http://${at}:2380`, '--initial-advertise-peer-urls', `http://${at}:2380`,
      '--initial-cluster', `u=http://${at}:2380`,
    ]);
    const ctl = (h: Host, ...args: string[]) => h.exec(['env', 'ETCDCTL_API=3', 'etcdctl', '--dial-timeout=2s', '--command-timeout=5s', `--endpoints=http://${at}:2379`, ...args]);
    let put = await ctl(a, 'put', '/berth/test', a.name);
    for (let i = 0; i < 100 && put.exitCode !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      put = await ctl(a, 'put', '/berth/test', a.name);
    }
    expect(put.exitCode, put.stderr).toBe(0);
    expect((await ctl(b, 'get', '--print-value-only', '/berth/test')).stdout.trim()).toBe(a.name);
    const exited = new Promise((r) => etcd.on('exit', r));
    process.kill(etcd.pid!, 'SIGTERM');
    await exited;
    expect((await ctl(b, 'get', '/berth/test')).exitCode).not.toBe(0);
  } finally {
    await rm(data, { recursive: true, force: true });
  }
}, 120_000);
