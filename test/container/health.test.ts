/**
 * Issue 10, healthchecks: real containers, the real timer loop (runtime/healthtimer.ts), through the CLI
 * as compose and testcontainers drive it. The CLI that ran the container has exited before any check
 * runs, so every status seen here came from the detached timer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDockerArchive } from '../fixtures/images.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(3900 + (process.pid % 50));
  await t.engine.images.ensureDefault();
  // An image with a HEALTHCHECK (Docker's config, durations in ns), built from the host's busybox.
  const archive = path.join(t.root, 'hc.tar');
  await makeDockerArchive(archive, [{
    entries: [
      { type: 'dir', path: 'bin' }, { type: 'dir', path: 'tmp', mode: 0o1777 },
      { type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    ],
  }], {
    tags: ['localhost/hc:1'],
    config: { Cmd: ['/bin/busybox', 'sleep', '1000'], Healthcheck: { Test: ['CMD', '/bin/busybox', 'true'], Interval: 300_000_000, Retries: 2 } },
  });
  expect((await berth('load', '-i', archive)).exitCode).toBe(0);
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
});

const berth = (...args: string[]) => t.cli(...args);

async function runDetached(...args: string[]): Promise<string> {
  const res = await berth('run', '-d', '--network', 'none', ...args);
  expect(res.exitCode, res.stderr).toBe(0);
  return res.stdout.trim();
}

interface Health { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] }

async function health(id: string): Promise<Health | undefined> {
  const res = await berth('inspect', '--format', '{{json .State.Health}}', id);
  expect(res.exitCode, res.stderr).toBe(0);
  return res.stdout.trim() === 'null' ? undefined : JSON.parse(res.stdout) as Health;
}

/** Polls until `ok` holds (no time is asserted: the limit only keeps a broken timer from hanging the test). */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, limitMs = 60_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The timer loops of this root for container `id`: the loops, not the subshell a loop forks for a tick
 * (it has the loop's command line until it execs the tick).
 */
function timers(id: string): string[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' }).split('\n')
    .filter((l) => l.includes('berth-health') && l.includes(` ${t.root} `) && l.includes(`tick ${id}`))
    .map((l) => l.trim().split(/\s+/));
  const pids = new Set(rows.map((r) => r[0]));
  return rows.filter((r) => !pids.has(r[1])).map((r) => r.join(' '));
}

describe('a healthchecked container', () => {
  it('goes healthy, and checks go on after the CLI that ran it exited', async () => {
    const id = await runDetached('--name', 'ok1', '--health-cmd', 'echo fine', '--health-interval', '300ms', 'busybox', 'sleep', '1000');
    expect(timers(id)).toHaveLength(1);
    // The run -d process is gone; a log of several results means the detached timer ran them.
    const h = await until('healthy with 3 results', () => health(id), (v) => v?.Status === 'healthy' && v.Log.length >= 3);
    expect(h).toMatchObject({ FailingStreak: 0 });
    expect(h!.Log.at(-1)).toMatchObject({ ExitCode: 0, Output: 'fine\n' });

    const ps = await berth('ps', '--filter', 'name=ok1', '--format', '{{.Status}}');
    expect(ps.stdout).toMatch(/^Up .* \(healthy\)$/);
    expect((await berth('ps', '-q', '--no-trunc', '--filter', 'health=healthy')).stdout).toContain(id);
    expect((await berth('ps', '-q', '--no-trunc', '--filter', 'health=unhealthy')).stdout).not.toContain(id);
    expect((await berth('ps', '-q', '--no-trunc', '--filter', 'health=none')).stdout).not.toContain(id);
    const cfg = await berth('inspect', '--format', '{{json .Config.Healthcheck}}', id);
    expect(JSON.parse(cfg.stdout)).toMatchObject({ Test: ['CMD-SHELL', 'echo fine'], Interval: 300_000_000, Retries: 3 });
    const events = await berth('events', '--since', '5m', '--until', '0s', '--filter', `container=${id}`, '--filter', 'event=health_status');
    expect(events.stdout).toContain('health_status: healthy');

    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
    expect(timers(id)).toEqual([]);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);

  it('goes unhealthy after --health-retries failures, and emits it', async () => {
    const id = await runDetached('--health-cmd', 'echo broken; exit 3', '--health-interval', '300ms', '--health-retries', '2', 'busybox', 'sleep', '1000');
    const h = await until('unhealthy', () => health(id), (v) => v?.Status === 'unhealthy');
    expect(h!.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(h!.Log.at(-1)).toMatchObject({ ExitCode: 3, Output: 'broken\n' });
    expect((await berth('ps', '-q', '--no-trunc', '--filter', 'health=unhealthy')).stdout).toContain(id);
    expect((await berth('events', '--since', '5m', '--until', '0s', '--filter', `container=${id}`)).stdout).toContain('health_status: unhealthy');
    const run = await berth('healthcheck', 'run', id);
    expect(run.exitCode).toBe(1);
    expect(run.stdout.trim()).toBe('unhealthy');
    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
    expect(timers(id)).toEqual([]);
  }, 120_000);

  it('honours the start period: failures do not count until a first success', async () => {
    const id = await runDetached('--health-cmd', 'test -f /tmp/ready', '--health-interval', '300ms', '--health-start-period', '1h',
      '--health-start-interval', '300ms', '--health-retries', '1', 'busybox', 'sleep', '1000');
    const starting = await until('3 failed checks', () => health(id), (v) => (v?.Log.length ?? 0) >= 3);
    expect(starting).toMatchObject({ Status: 'starting', FailingStreak: 0 });
    expect((await berth('ps', '--filter', `id=${id}`, '--format', '{{.Status}}')).stdout).toMatch(/\(health: starting\)$/);
    expect((await berth('exec', id, 'touch', '/tmp/ready')).exitCode).toBe(0);
    await until('healthy', () => health(id), (v) => v?.Status === 'healthy');
    // Once healthy, a failure counts even inside the start period (Docker's rule).
    expect((await berth('exec', id, 'rm', '/tmp/ready')).exitCode).toBe(0);
    await until('unhealthy', () => health(id), (v) => v?.Status === 'unhealthy');
    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
  }, 120_000);

  it("runs the image's HEALTHCHECK, and --no-healthcheck turns it off", async () => {
    const id = await runDetached('localhost/hc:1');
    await until('healthy', () => health(id), (v) => v?.Status === 'healthy');
    const off = await runDetached('--no-healthcheck', 'localhost/hc:1');
    expect(await health(off)).toBeUndefined();
    expect(timers(off)).toEqual([]);
    expect((await berth('inspect', '--format', '{{json .Config.Healthcheck}}', off)).stdout.trim()).toBe('{"Test":["NONE"]}');
    const run = await berth('healthcheck', 'run', off);
    expect(run.exitCode).toBe(125);
    expect(run.stderr).toContain('has no healthcheck');
    expect((await berth('rm', '-f', id, off)).exitCode).toBe(0);
  }, 120_000);

  it('stops its timer when it stops, is killed or exits; a start begins a new one', async () => {
    const id = await runDetached('--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'sleep', '1000');
    expect(timers(id)).toHaveLength(1);
    expect((await berth('stop', '-t', '1', id)).exitCode).toBe(0);
    expect(timers(id)).toEqual([]);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
    // health stays as it was, as Docker keeps it; a start makes it `starting` again.
    expect((await berth('start', id)).exitCode).toBe(0);
    expect(timers(id)).toHaveLength(1);
    expect((await health(id))?.Status).toBe('starting');
    expect((await berth('kill', id)).exitCode).toBe(0);
    expect(timers(id)).toEqual([]);

    const short = await runDetached('--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'sleep', '1');
    await until('exited and cleaned up', async () => (await berth('ps', '-a', '--filter', `id=${short}`, '--format', '{{.State}}')).stdout.trim(), (s) => s === 'exited');
    await until('timer of the exited container gone', async () => timers(short), (l) => l.length === 0);
    expect((await berth('rm', '-f', id, short)).exitCode).toBe(0);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);
});

describe('a start killed just after its timer began', () => {
  it('is finished by the next command, and its checks go on; rm leaves nothing', async () => {
    const { BERTH_FAILPOINT: _unset, ...env } = process.env;
    const before = new Set((await berth('ps', '-a', '-q', '--no-trunc')).stdout.split('\n'));
    const killed = await execa(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, 'run', '-d', '--network', 'none',
      '--health-cmd', 'true', '--health-interval', '300ms', 'busybox', 'sleep', '1000'],
    { env: { ...env, BERTH_FAILPOINT: 'container.start.after-health-timer' }, extendEnv: false, reject: false, timeout: 60_000 });
    expect(killed.signal).toBe('SIGKILL');
    // One later command repairs the record (runc runs it: it is running) and gives it a timer again.
    const ps = await berth('ps', '-a', '-q', '--no-trunc');
    const id = ps.stdout.split('\n').find((l) => l && !before.has(l))!;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    await until('healthy', () => health(id), (v) => v?.Status === 'healthy');
    expect(timers(id)).toHaveLength(1);
    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
    expect(timers(id)).toEqual([]);
    expect(await findLeaks(t.root, t.runroot, { known: [id] })).toEqual([]);
  }, 120_000);
});

describe('berth healthcheck run', () => {
  it('exits 0 healthy, 1 failed or timed out, 125 when it cannot check', async () => {
    const ok = await runDetached('--health-cmd', 'true', '--health-interval', '1h', 'busybox', 'sleep', '1000');
    const slow = await runDetached('--health-cmd', 'sleep 30', '--health-timeout', '300ms', '--health-interval', '1h', 'busybox', 'sleep', '1000');
    const plain = await runDetached('busybox', 'sleep', '1000');
    expect((await berth('healthcheck', 'run', ok)).exitCode).toBe(0);
    expect((await health(ok))?.Status).toBe('healthy');

    const timedOut = await berth('healthcheck', 'run', slow);
    expect(timedOut.exitCode).toBe(1);
    expect((await health(slow))?.Log.at(-1)).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (300ms)' });

    const none = await berth('healthcheck', 'run', plain);
    expect(none.exitCode).toBe(125);
    expect(none.stderr).toContain('has no healthcheck');
    expect((await berth('healthcheck', 'run', 'nosuch')).stderr).toContain('nosuch');
    expect((await berth('stop', '-t', '0', ok)).exitCode).toBe(0);
    const stopped = await berth('healthcheck', 'run', ok);
    expect(stopped.exitCode).toBe(125);
    expect(stopped.stderr).toContain('is not running');
    expect((await berth('rm', '-f', ok, slow, plain)).exitCode).toBe(0);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);

  it('keeps 4 KiB of a flood of output, and output that looks like a delay does not steer the timer', async () => {
    const id = await runDetached('--health-cmd', 'head -c 100000 /dev/zero | tr "\\0" x; echo; echo 0.001', '--health-interval', '1h', 'busybox', 'sleep', '1000');
    expect((await berth('healthcheck', 'run', id)).exitCode).toBe(0);
    expect((await health(id))!.Log.at(-1)!.Output.length).toBe(4096);
    expect(timers(id)).toHaveLength(1);
    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
  }, 60_000);
});

describe('a hostile health command', () => {
  it('runs in the container, never on the host, whatever its quoting', async () => {
    const proof = `/tmp/berth-hc-proof-${process.pid}`;
    const id = await runDetached('--health-cmd', `touch ${proof}; echo '"; touch ${proof}-host #'`, '--health-interval', '1h', 'busybox', 'sleep', '1000');
    expect((await berth('healthcheck', 'run', id)).exitCode).toBe(0);
    expect((await berth('exec', id, 'test', '-f', proof)).exitCode).toBe(0);
    expect(existsSync(proof)).toBe(false);
    expect(existsSync(`${proof}-host`)).toBe(false);
    expect((await berth('rm', '-f', id)).exitCode).toBe(0);
  }, 60_000);
});

describe('health options Docker refuses are refused at create, leaving no container', () => {
  it.each([
    [['--health-interval', '-1s'], /--health-interval cannot be negative/],
    [['--health-timeout', '-5s'], /--health-timeout cannot be negative/],
    [['--health-retries', '-1'], /--health-retries cannot be negative/],
    [['--health-start-period', '-1m'], /--health-start-period cannot be negative/],
    [['--health-start-interval', '-1m'], /--health-start-interval cannot be negative/],
    [['--health-interval', '5'], /missing unit in duration "5"/],
    [['--health-interval', '1 s'], /time: unknown unit " s" in duration "1 s"/],
    [['--health-interval', '1e9s'], /unknown unit "e"/],
    [['--health-timeout', '500us'], /Timeout in Healthcheck cannot be less than 1ms/],
    [['--health-interval', '99999999999h'], /invalid duration/],
    [['--health-cmd', ''], /healthcheck command is empty/],
  ])('%j', async (flags, message) => {
    const before = (await berth('ps', '-a', '-q')).stdout;
    const res = await berth('create', '--health-cmd', 'true', ...flags, 'busybox');
    expect(res.exitCode, res.stderr).toBe(125);
    expect(res.stderr).toMatch(message);
    expect((await berth('ps', '-a', '-q')).stdout).toBe(before);
  });

  it.each([
    [['--no-healthcheck', '--health-cmd', 'true'], /--no-healthcheck conflicts with --health-\* options/],
    [['--health-interval', '5s'], /no healthcheck command/],
  ])('%j', async (flags, message) => {
    const before = (await berth('ps', '-a', '-q')).stdout;
    const res = await berth('create', ...flags, 'busybox');
    expect(res.exitCode, res.stderr).toBe(125);
    expect(res.stderr).toMatch(message);
    expect((await berth('ps', '-a', '-q')).stdout).toBe(before);
  });

  it('refuses an unknown health filter value', async () => {
    const res = await berth('ps', '--filter', 'health=sick');
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toContain('Unrecognised filter value for health: sick');
  });
});
