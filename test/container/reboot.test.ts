import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../../src/container/index.js';
import { anythingOurs, iptablesRestore, iptablesSave, renderRemoval } from '../../src/network/firewall.js';
import { hostNames } from '../../src/paths.js';
import { testEngine, unmountUnder, type TestEngine } from '../helpers/engine.js';

/**
 * A simulated reboot of one test root: every process of the root killed, its mounts unmounted, its
 * network namespaces, bridges and iptables chains deleted, its cgroups and runroot gone; then
 * `berth system boot` must bring back what the restart policies say, with their networks.
 */
let t: TestEngine;
const slot = 3025 + (process.pid % 25);
const port = 19100 + (process.pid % 100);
const subnet = `10.231.${slot % 256}.0/24`;
const HEX64 = /^[0-9a-f]{64}$/;

beforeAll(async () => {
  t = await testEngine(slot);
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
});

function stored(id: string): ContainerRecord {
  return JSON.parse(readFileSync(path.join(t.root, 'containers', id, 'container.json'), 'utf8')) as ContainerRecord;
}

function containerIds(): string[] {
  const dir = path.join(t.root, 'containers');
  return existsSync(dir) ? readdirSync(dir).filter((d) => HEX64.test(d)) : [];
}

/** Processes of this root only: named by its root or runroot (monitors, hooks, name servers, health loops) or in its containers' cgroups. */
function rootProcesses(ids: readonly string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      if (cmdline.includes(t.root) || cmdline.includes(t.runroot) || ids.some((id) => cgroup.includes(`/berth/${id}`))) pids.push(pid);
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

async function simulateReboot(): Promise<void> {
  const ids = containerIds();
  for (let round = 0; round < 20; round++) {
    const pids = rootProcesses(ids);
    if (!pids.length) break;
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await sleep(100);
  }
  expect(rootProcesses(ids)).toEqual([]);
  // Mounts: container file systems and network namespace files.
  unmountUnder(t.root);
  unmountUnder(t.runroot);
  // Bridges: only those this root's network records name.
  for (const file of readdirSync(path.join(t.root, 'networks')).filter((f) => f.endsWith('.json'))) {
    const net = JSON.parse(readFileSync(path.join(t.root, 'networks', file), 'utf8')) as { driver: string; driverOptions: { bridge?: string }; adopted?: unknown };
    const bridge = net.driverOptions.bridge;
    if (net.driver !== 'bridge' || !bridge || net.adopted || !existsSync(`/sys/class/net/${bridge}`)) continue;
    execFileSync('ip', ['link', 'del', bridge]);
  }
  // iptables: this root's chains and the jumps into them, nothing else.
  const prefix = hostNames(t.root).chainPrefix;
  for (const family of [4, 6] as const) {
    const saved = await iptablesSave(family);
    if (anythingOurs(saved, prefix)) await iptablesRestore(renderRemoval(saved, prefix), family);
  }
  // cgroups of its containers (a reboot starts with none).
  for (const id of ids) {
    for (const hier of readdirSync('/sys/fs/cgroup')) {
      const dir = path.join('/sys/fs/cgroup', hier, 'berth', id);
      if (existsSync(dir)) rmdirSync(dir);
    }
  }
  await rm(t.runroot, { recursive: true, force: true });
}

function get(p: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: p, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function getEventually(p: number): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 60; i++) {
    try { return await get(p); } catch (err) { last = err; await sleep(50); }
  }
  throw last;
}

async function run(...args: string[]): Promise<string> {
  const r = await t.cli('run', '-d', ...args);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function inspect(ref: string): Promise<{ Id: string; State: { Status: string; ExitCode: number; Error: string; FinishedAt: string; StartedAt: string; Pid: number } }> {
  const r = await t.cli('inspect', ref);
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as never[])[0]!;
}

describe('berth system boot after a reboot', () => {
  it('brings back `always` and `unless-stopped` containers with their networks, and leaves the others exited', async () => {
    expect((await t.cli('network', 'create', '--subnet', subnet, 'appnet')).exitCode).toBe(0);
    const web = await run('--name', 'web', '--restart', 'always', '--network', 'appnet', '-p', `127.0.0.1:${port}:80`,
      'busybox', 'sh', '-c', 'echo hello-boot > /tmp/index.html && exec httpd -f -p 80 -h /tmp');
    const db = await run('--name', 'db', '--restart', 'unless-stopped', '--network', 'appnet', 'busybox', 'sleep', '1000');
    const flaky = await run('--name', 'flaky', '--restart', 'on-failure', 'busybox', 'sleep', '1000');
    const plain = await run('--name', 'plain', '--network', 'appnet', 'busybox', 'sleep', '1000');
    const held = await run('--name', 'held', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000');
    const kept = await run('--name', 'kept', '--restart', 'always', 'busybox', 'sleep', '1000');
    expect((await t.cli('stop', '-t', '0', 'held', 'kept')).exitCode).toBe(0);
    expect(await getEventually(port)).toBe('hello-boot\n');
    const heldBefore = await inspect('held');

    await simulateReboot();
    await expect(get(port)).rejects.toThrow();
    expect(await anythingOurs(await iptablesSave(4), hostNames(t.root).chainPrefix)).toBe(false);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(t.root);
    const rebootedAt = new Date().toISOString();

    // Two at once (an init system's retry, an admin's): they take turns; each container starts once.
    const boots = await Promise.all([t.cli('system', 'boot'), t.cli('system', 'boot')]);
    for (const b of boots) expect(b.exitCode, b.stderr).toBe(0);
    const started = boots.flatMap((b) => b.stdout.split('\n').filter(Boolean));
    // Docker's rules: always (even one the user had stopped), unless-stopped unless the user stopped it,
    // and on-failure after the unknown (255) exit the reboot caused.
    expect(started.sort()).toEqual([web, db, flaky, kept].sort());

    for (const ref of ['web', 'db', 'flaky', 'kept']) expect((await inspect(ref)).State.Status).toBe('running');
    expect(await getEventually(port)).toBe('hello-boot\n');
    const ping = await t.cli('exec', 'web', 'ping', '-c', '1', '-W', '2', 'db');
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);

    const p = await inspect('plain');
    expect(p.State).toMatchObject({ Status: 'exited', ExitCode: 255, Pid: 0 });
    expect(p.State.Error).toMatch(/monitor was lost/);
    expect(p.State.FinishedAt >= rebootedAt.slice(0, 19)).toBe(true);
    // Stopped by the user before the reboot: untouched.
    expect(await inspect('held')).toEqual(heldBefore);
    expect(stored(plain).state).toBe('exited');

    const events = await t.cli('events', '--since', rebootedAt, '--until', '0s', '--format', '{{.Action}} {{.Actor.Attributes.name}}');
    const lines = events.stdout.trim().split('\n');
    for (const name of ['web', 'db', 'flaky', 'kept']) {
      expect(lines.filter((l) => l === `start ${name}`)).toHaveLength(1);
      expect(lines).toContain(`restart ${name}`);
    }
    expect(lines).toContain('die plain');

    // A second boot changes nothing.
    const before = containerIds().map((id) => stored(id));
    const again = await t.cli('system', 'boot');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toBe('');
    expect(containerIds().map((id) => stored(id))).toEqual(before);
    expect(await getEventually(port)).toBe('hello-boot\n');
  });

  it('prints a systemd unit that runs it with this store', async () => {
    const r = await t.cli('system', 'boot', '--print-unit');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^\[Unit\]/);
    expect(r.stdout).toContain('Type=oneshot');
    const exec = /^ExecStart=(.*)$/m.exec(r.stdout)?.[1] ?? '';
    expect(exec).toContain(`--root ${t.root} --runroot ${t.runroot} system boot`);
    expect(r.stdout).toContain('WantedBy=multi-user.target');
  });
});
