import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostNames } from '../../src/paths.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(4000 + (process.pid % 90));
  await t.engine.images.ensureDefault();
});
afterAll(async () => t?.cleanup());

/** Starts `berth run` and SIGKILLs it after `ms` milliseconds, wherever it is. */
function runAndKill(ms: number, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, 'run', ...args], { stdio: 'ignore' });
    setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => resolve());
  });
}

function leftovers(): string[] {
  const found: string[] = [];
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((l) => l.includes(t.root) || l.includes(t.runroot));
  found.push(...mounts.map((m) => `mount ${m.split(' ')[1]}`));
  const runc = execFileSync('runc', ['--root', path.join(t.runroot, 'runc'), 'list', '-q'], { encoding: 'utf8' }).trim();
  if (runc) found.push(`runc ${runc}`);
  for (const ctrl of ['memory', 'pids', 'cpu']) {
    const dir = `/sys/fs/cgroup/${ctrl}/berth`;
    const ids = existsSync(dir) ? readdirSync(dir).filter((d) => /^[0-9a-f]{64}$/.test(d)) : [];
    // Other test files' containers live here too: only ours count.
    const ours = new Set(readdirSync(path.join(t.root, 'containers')).filter((d) => /^[0-9a-f]{64}$/.test(d)));
    found.push(...ids.filter((id) => ours.has(id) || killedIds.has(id)).map((id) => `cgroup ${ctrl}/${id}`));
  }
  const prefix = hostNames(t.root).chainPrefix;
  const rules = execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('-A') && l.includes('berth:') && l.includes(prefix) && !l.includes('-j '));
  found.push(...rules.map((r) => `rule ${r}`));
  return found;
}

const killedIds = new Set<string>();

describe('a berth run killed at any point', () => {
  it('leaves nothing that the next commands do not repair', async () => {
    for (const ms of [60, 120, 180, 240, 300, 400, 600]) {
      await runAndKill(ms, ['--rm', 'busybox', 'sh', '-c', 'sleep 0.2']);
      await runAndKill(ms, ['-d', '-p', `127.0.0.1:${25000 + ms}:80`, 'busybox', 'sleep', '300']);
    }
    for (const c of await t.engine.containers.list({ all: true })) killedIds.add(c.id);
    // The next commands: what a user would run to see and clean up.
    await t.engine.containers.list({ all: true });
    for (const c of await t.engine.containers.list({ all: true })) await t.engine.containers.remove(c.id, { force: true });
    await t.engine.system.prune();
    // --rm containers whose exit came after the kill are cleaned by their monitors' exit hooks.
    for (let i = 0; i < 50 && (await t.engine.containers.list({ all: true })).length; i++) await new Promise((r) => setTimeout(r, 100));
    await t.engine.system.prune();
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
