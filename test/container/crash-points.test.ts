import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostNames } from '../../src/paths.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import type { FailpointName } from '../../src/util/failpoint.js';

/**
 * Issue 8: a berth command SIGKILLed at an exact step (src/util/failpoint.ts), then ONE later command,
 * leaves nothing behind, and the listings show what existed before plus only completed work (Docker:
 * a container whose create completed may stay as Created; one whose record was never committed is not
 * there and its name is free; a removal that was under way is finished).
 */
const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
// 18700-18739; test/container/crash.test.ts uses 18740-18779.
const PORT = 18700 + (process.pid % 20) * 2;
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(3400 + (process.pid % 100));
  await t.engine.images.ensureDefault();
  // The default bridge gets the test's subnet: the CLI reads the network records this writes.
  await t.engine.networks.list();
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
  if (t) expect(await findLeaks(t.root, t.runroot, { final: true, known: seen })).toEqual([]);
});

/** Every container id this file has seen, so host-wide objects named by a removed one are checked too. */
const seen = new Set<string>();

async function berth(args: string[], failpoint?: FailpointName) {
  const { BERTH_FAILPOINT: _unset, ...rest } = process.env;
  const env = failpoint ? { ...rest, BERTH_FAILPOINT: failpoint } : rest;
  return execa(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, ...args], { env, extendEnv: false, reject: false, timeout: 60_000 });
}

async function ok(args: string[]): Promise<string> {
  const r = await berth(args);
  expect(r.exitCode, `berth ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The user's view, with nothing that changes with the clock. */
async function listings() {
  return {
    images: await ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']),
    networks: await ok(['network', 'ls', '--format', '{{.ID}} {{.Name}} {{.Driver}}']),
  };
}

const PS = ['ps', '-a', '--no-trunc', '--format', '{{.ID}} {{.Names}} {{.State}} {{.Ports}}'];

/**
 * Waits for the exit work of container `id` (its monitor and the exit hook it starts) to end. When rm -f is
 * killed after it killed the container, that hook is a second later command racing the test's one: while it
 * holds the container's lock, ps truthfully shows "removing".
 */
async function exitWorkDone(id: string): Promise<void> {
  const busy = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes(id) && cmd.includes('cleanup');
    } catch {
      return false;
    }
  });
  for (let i = 0; i < 300 && busy(); i++) await new Promise((r) => setTimeout(r, 100));
}

function containerIds(): string[] {
  const dir = path.join(t.root, 'containers');
  return existsSync(dir) ? readdirSync(dir).filter((d) => /^[0-9a-f]{64}$/.test(d)) : [];
}

function record(id: string): { state: string } {
  return JSON.parse(readFileSync(path.join(t.root, 'containers', id, 'container.json'), 'utf8'));
}

function firewallOwners(): string {
  return execFileSync('iptables-save', { encoding: 'utf8' });
}

function httpStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function eventuallyServes(port: number): Promise<number> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try { return await httpStatus(port); } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw last;
}

/** Kills `args` at `point`; returns the id of the container it was working on. */
async function killAt(point: FailpointName, args: string[]): Promise<string> {
  const before = new Set(containerIds());
  const r = await berth(args, point);
  expect(r.signal, `berth ${args.join(' ')} was not killed at ${point}: ${r.stderr}`).toBe('SIGKILL');
  const made = containerIds().filter((id) => !before.has(id));
  for (const id of made) seen.add(id);
  return made[0]!;
}

describe('a command killed at a failpoint, then one later command', () => {
  it('create killed between snapshot and record: the container never existed, its name is free', async () => {
    const before = await listings();
    const ps = await ok(PS);
    const id = await killAt('container.create.after-snapshot', ['create', '--name', 'c1', 'busybox', 'true']);
    // Killed where the name says: the snapshot is made, the record not yet committed.
    expect(existsSync(path.join(t.root, 'snapshots', id, 'merged'))).toBe(true);
    expect(record(id).state).toBe('creating');

    expect(await ok(PS)).toBe(ps);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    expect(await listings()).toEqual(before);

    const again = (await ok(['create', '--name', 'c1', 'busybox', 'true'])).trim();
    seen.add(again);
    await ok(['rm', 'c1']);
    expect(await ok(['run', '--rm', '--name', 'c1', 'busybox', 'true'])).toBe('');
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
  });

  it('run killed after the veth, before the port rules: the container stays Created, the port is free', async () => {
    const before = await listings();
    const ps = await ok(PS);
    const args = ['run', '-d', '--name', 'w1', '-p', `127.0.0.1:${PORT}:80`, 'busybox', 'httpd', '-f', '-p', '80'];
    const id = await killAt('container.run.after-veth', args);
    const sandbox = JSON.parse(readFileSync(path.join(t.runroot, 'net', 'sandboxes', `${id}.json`), 'utf8')) as { endpoints: { hostInterface: string }[] };
    expect(existsSync(`/sys/class/net/${sandbox.endpoints[0]!.hostInterface}`)).toBe(true);
    expect(firewallOwners()).not.toContain(`berth:${id}`);

    expect(await ok(PS)).toBe(`${ps}${ps ? '\n' : ''}${id} w1 created `);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    expect(await listings()).toEqual(before);

    // The repaired container starts and serves on its port; after removing it, a new one takes both.
    await ok(['start', 'w1']);
    expect(await eventuallyServes(PORT)).toBeGreaterThan(0);
    await ok(['rm', '-f', 'w1']);
    seen.add((await ok(args)).trim());
    expect(await eventuallyServes(PORT)).toBeGreaterThan(0);
    await ok(['rm', '-f', 'w1']);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
  });

  it('run killed while rewriting the firewall for a new bridge: its lock goes with the next command', async () => {
    // `network create` makes the bridge; a run remakes one that is gone (after a reboot), and rewrites
    // the firewall for it under the firewall lock.
    await ok(['network', 'create', 'fwnet']);
    const netId = (await ok(['network', 'inspect', '--format', '{{.Id}}', 'fwnet'])).trim();
    const rec = JSON.parse(readFileSync(path.join(t.root, 'networks', `${netId}.json`), 'utf8')) as { driverOptions: { bridge: string } };
    execFileSync('ip', ['link', 'del', rec.driverOptions.bridge]);
    const before = await listings();
    const ps = await ok(PS);
    const id = await killAt('network.firewall.mid-rewrite', ['run', '-d', '--name', 'n1', '--network', 'fwnet', 'busybox', 'sleep', '300']);
    expect(existsSync(path.join(t.runroot, 'locks', `firewall-${hostNames(t.root).chainPrefix}.lock`))).toBe(true);

    expect(await ok(PS)).toBe(`${ps}${ps ? '\n' : ''}${id} n1 created `);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    expect(await listings()).toEqual(before);

    await ok(['rm', 'n1']);
    await ok(['network', 'rm', 'fwnet']);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
  });

  it('rm killed while deleting the folder: its lock and the folder\'s remains go with the next command', async () => {
    const before = await listings();
    const ps = await ok(PS);
    const id = (await ok(['run', '-d', '--name', 'f1', 'busybox', 'sleep', '300'])).trim();
    seen.add(id);
    await killAt('container.rm.mid-folder', ['rm', '-f', 'f1']);
    // The record is gone, so no record tells the next command to finish; the lock is what is left (unless
    // the container's exit hook, which the kill of its process started, already took it away).
    expect(existsSync(path.join(t.root, 'containers', id, 'container.json'))).toBe(false);

    expect(await ok(PS)).toBe(ps);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    expect(await listings()).toEqual(before);
    expect(await ok(['run', '--rm', '--name', 'f1', 'busybox', 'true'])).toBe('');
  });

  it.each([
    ['a running container (rm -f)', ['rm', '-f', 'r1'], false],
    ['a stopped container (rm)', ['rm', 'r1'], true],
  ] as const)('rm of %s killed after runc delete: the removal is finished', async (_what, rmArgs, stopFirst) => {
    const runArgs = ['run', '-d', '--name', 'r1', '-p', `127.0.0.1:${PORT + 1}:80`, 'busybox', 'httpd', '-f', '-p', '80'];
    const before = await listings();
    const ps = await ok(PS);
    const id = (await ok(runArgs)).trim();
    seen.add(id);
    if (stopFirst) await ok(['stop', '-t', '0', 'r1']);
    await killAt('container.rm.after-runc-delete', [...rmArgs]);
    expect(record(id).state).toBe('removing');
    await exitWorkDone(id);
    expect(execFileSync('runc', ['--root', path.join(t.runroot, 'runc'), 'list', '-q'], { encoding: 'utf8' })).not.toContain(id);

    expect(await ok(PS)).toBe(ps);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    expect(await listings()).toEqual(before);

    seen.add((await ok(runArgs)).trim());
    expect(await eventuallyServes(PORT + 1)).toBeGreaterThan(0);
    await ok(['rm', '-f', 'r1']);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
  });
});

describe('the one later command need not be about containers', () => {
  // Every command looks for the traces of a killed one (src/api/engine.ts repairAfterKills).
  it.each([
    ['container.create.after-snapshot', ['create', '--name', 'k1', 'busybox', 'true'], ['images']],
    ['container.run.after-veth', ['run', '-d', '--name', 'k2', '-p', `127.0.0.1:${PORT + 1}:80`, 'busybox', 'httpd', '-f', '-p', '80'], ['network', 'ls']],
    ['container.rm.mid-folder', 'rm', ['images']],
  ] as const)('killed at %s, then an unrelated command leaves nothing', async (point, args, later) => {
    let id: string;
    if (args === 'rm') {
      const made = (await ok(['create', '--name', 'k3', 'busybox', 'true'])).trim();
      seen.add(made);
      await killAt(point, ['rm', 'k3']);
      id = made;
    } else {
      id = await killAt(point, [...args]);
    }
    await ok([...later]);
    expect(await findLeaks(t.root, t.runroot, { known: seen })).toEqual([]);
    // What is left is what Docker would show: a Created container after a killed run, nothing otherwise.
    const left = (await ok(PS)).split('\n').filter((l) => l.includes(id));
    for (const l of left) await ok(['rm', '-f', l.split(' ')[0]!]);
    expect(left.length).toBe(point === 'container.run.after-veth' ? 1 : 0);
  });
});
