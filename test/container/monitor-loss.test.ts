import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../../src/container/index.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

/**
 * A container's monitor (conmon) killed as the OOM killer or `kill -9` would, with or without the
 * container's process: the next command that looks records the truth and applies the restart policy.
 */
let t: TestEngine;
beforeAll(async () => {
  t = await testEngine(3000 + (process.pid % 25));
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
});

const none = ['--network', 'none'];

/** The record as stored, without any command looking at it (which would notice the loss). */
function stored(id: string): ContainerRecord {
  return JSON.parse(readFileSync(path.join(t.root, 'containers', id, 'container.json'), 'utf8')) as ContainerRecord;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILL, then wait until the process is gone (reaped), so the next step sees what a later command would. */
async function killHard(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 200 && alive(pid); i++) await sleep(25);
  expect(alive(pid)).toBe(false);
}

async function run(...args: string[]): Promise<{ id: string; monitor: number; pid: number }> {
  const r = await t.cli('run', '-d', ...none, ...args);
  expect(r.stderr).toBe('');
  const id = r.stdout.trim();
  const rec = stored(id);
  expect(rec.monitor).toMatch(/^\d+ \d+ [0-9a-f-]{36}$/);
  return { id, monitor: Number(rec.monitor!.split(' ')[0]), pid: rec.pid };
}

async function inspect(id: string): Promise<{ State: { Status: string; ExitCode: number; Error: string; FinishedAt: string; Pid: number }; RestartCount: number }> {
  const r = await t.cli('inspect', id);
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as never[])[0]!;
}

/** Waits (bounded) until the container runs again under a new process. */
async function runningAgain(id: string, oldPid: number): Promise<{ pid: number; monitor: number }> {
  for (let i = 0; i < 200; i++) {
    const rec = stored(id);
    if (rec.state === 'running' && rec.pid !== oldPid && rec.pid > 0) return { pid: rec.pid, monitor: Number(rec.monitor!.split(' ')[0]) };
    await sleep(50);
  }
  throw new Error(`container ${id} did not run again`);
}

async function eventsOf(id: string): Promise<string[]> {
  const r = await t.cli('events', '--since', '10m', '--until', '0s', '--filter', `container=${id}`, '--format', 'json');
  return r.stdout.trim().split('\n').map((l) => {
    const e = JSON.parse(l) as { Action: string; Actor: { Attributes: Record<string, string> } };
    return e.Actor.Attributes.exitCode ? `${e.Action} ${e.Actor.Attributes.exitCode}` : e.Action;
  });
}

describe('a container whose monitor is killed', () => {
  it('alone: the process it left is ended (137), the loss recorded, and `always` starts it again', async () => {
    const c = await run('--restart', 'always', 'busybox', 'sleep', '1000');
    await killHard(c.monitor);
    expect(alive(c.pid)).toBe(true);
    const st = await inspect(c.id);
    expect(st.State.ExitCode).toBe(137);
    expect(st.State.Error).toMatch(/monitor was lost/);
    expect(Date.parse(st.State.FinishedAt)).toBeGreaterThan(Date.now() - 60_000);
    // The process without a monitor is gone: nothing would have held its output or recorded its end.
    expect(alive(c.pid)).toBe(false);
    const again = await runningAgain(c.id, c.pid);
    expect(alive(again.monitor)).toBe(true);
    expect((await inspect(c.id)).RestartCount).toBe(1);
    expect(await eventsOf(c.id)).toEqual(expect.arrayContaining(['die 137', 'restart']));
    await t.cli('rm', '-f', c.id);
  });

  it('with its process: the exit is unknowable (255, State.Error says why), and ps shows no year-1 time', async () => {
    const c = await run('--restart', 'no', 'busybox', 'sleep', '1000');
    await killHard(c.monitor);
    await killHard(c.pid);
    const ps = await t.cli('ps', '-a', '--filter', `id=${c.id}`, '--format', '{{.Status}}');
    expect(ps.stdout.trim()).toMatch(/^Exited \(255\) (Less than a second|\d+ seconds?) ago$/);
    const st = await inspect(c.id);
    expect(st.State).toMatchObject({ Status: 'exited', ExitCode: 255, Pid: 0 });
    expect(st.State.Error).toMatch(/monitor was lost .*exit status/);
    expect(st.State.FinishedAt).not.toMatch(/^0001/);
    expect(await eventsOf(c.id)).toContain('die 255');
    // Recorded once: looking again changes nothing.
    expect((await inspect(c.id)).State.FinishedAt).toBe(st.State.FinishedAt);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
    await t.cli('rm', c.id);
  });

  it('while `wait` waits on it: wait records the loss and prints its code', async () => {
    const c = await run('busybox', 'sleep', '1000');
    const waiting = t.cli('wait', c.id);
    await sleep(300);
    await killHard(c.monitor);
    await killHard(c.pid);
    const w = await waiting;
    expect(w.exitCode, w.stderr).toBe(0);
    // 255 when both were gone when wait looked; 137 when wait looked between the two kills, found the
    // process alive without its monitor and ended it itself. Either way, what it printed is what it recorded.
    expect(w.stdout.trim()).toMatch(/^(255|137)$/);
    expect(stored(c.id)).toMatchObject({ state: 'exited', exitCode: Number(w.stdout.trim()) });
    await t.cli('rm', c.id);
  });

  it('only the container a command names is looked at; ps looks at all', async () => {
    const a = await run('busybox', 'sleep', '1000');
    const b = await run('busybox', 'sleep', '1000');
    for (const c of [a, b]) {
      await killHard(c.monitor);
      await killHard(c.pid);
    }
    await t.cli('logs', a.id);
    expect(stored(a.id).state).toBe('exited');
    expect(stored(b.id).state).toBe('running');
    await t.cli('ps');
    expect(stored(b.id).state).toBe('exited');
    await t.cli('rm', a.id, b.id);
  });

  it('restarts after the loss as its policy says, and a container the user stopped stays stopped', async () => {
    const policies = ['always', 'unless-stopped', 'on-failure', 'no'] as const;
    const cs = await Promise.all(policies.map((p) => run('--restart', p, 'busybox', 'sleep', '1000')));
    const stopped = await run('--restart', 'always', 'busybox', 'sleep', '1000');
    expect((await t.cli('stop', '-t', '0', stopped.id)).exitCode).toBe(0);
    for (const c of cs) {
      await killHard(c.monitor);
      await killHard(c.pid);
    }
    // One `ps` notices them all.
    expect((await t.cli('ps', '-a')).exitCode).toBe(0);
    for (const [i, c] of cs.entries()) {
      if (policies[i] === 'no') continue;
      await runningAgain(c.id, c.pid);
    }
    const no = await inspect(cs[3]!.id);
    expect(no.State).toMatchObject({ Status: 'exited', ExitCode: 255 });
    expect(no.RestartCount).toBe(0);
    expect((await inspect(stopped.id)).State.Status).toBe('exited');
    await t.cli('rm', '-f', ...cs.map((c) => c.id), stopped.id);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  });
});

describe('a container whose process is killed, its monitor alive', () => {
  it('records 137 through the monitor, and `always` brings it back after the back-off', async () => {
    const c = await run('--restart', 'always', 'busybox', 'sleep', '1000');
    await killHard(c.pid);
    const again = await runningAgain(c.id, c.pid);
    expect(alive(again.monitor)).toBe(true);
    const st = await inspect(c.id);
    expect(st.RestartCount).toBe(1);
    expect(await eventsOf(c.id)).toEqual(expect.arrayContaining(['die 137', 'restart']));
    expect(stored(c.id).backoffMs).toBe(100);
    await t.cli('rm', '-f', c.id);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
    expect(existsSync(path.join(t.root, 'containers', c.id))).toBe(false);
  });
});
