import { readdirSync } from 'node:fs';
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
