import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/api/types.js';
import { CannotInvokeError, CommandNotFoundError, isAlreadyGone } from '../../src/errors.js';
import { monitorRssKb } from '../../src/runtime/index.js';
import { fakeTerminal } from '../helpers/terminal.js';
import { isLiveConmon, makeFixture, runcIds, type Fixture } from './fixture.js';

const execFileP = promisify(execFile);
let fx: Fixture;

beforeEach(async () => {
  fx = await makeFixture();
});
afterEach(async () => {
  const ids = [...fx.ids];
  const monitors = await Promise.all(ids.map((id) => fx.rt.monitor.pid(id)));
  await fx.cleanup();
  // Nothing left behind: no monitor processes, no cgroups (the store folder itself is gone).
  for (const pid of monitors) if (pid) expect(await isLiveConmon(pid)).toBe(false);
  for (const dir of ['memory', 'pids', 'unified']) {
    expect(await fsp.access(`/sys/fs/cgroup/${dir}/berthtest`).then(() => true, () => false)).toBe(false);
  }
});

async function collect(it: AsyncIterable<LogEntry>): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('runtime with real runc and conmon', () => {
  it('runs a container, logs both streams, records the exit code', async () => {
    const b = await fx.bundle(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    const { pid } = await fx.rt.monitor.create({ ...b, tty: false, openStdin: false });
    expect(pid).toBeGreaterThan(0);
    expect((await fx.rt.runc.state(b.id))?.status).toBe('created');
    const monitor = await fx.rt.monitor.pid(b.id);
    console.log(`conmon RSS: ${monitor ? await monitorRssKb(monitor) : '?'} kB`);
    await fx.rt.runc.start(b.id);
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(3);
    const st = await fx.rt.monitor.exitStatus(b.id);
    expect(st?.exitCode).toBe(3);
    expect(st?.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const entries = await collect(fx.rt.monitor.readLog(b.logPath));
    expect(entries.map((e) => [e.stream, e.line])).toEqual(expect.arrayContaining([['stdout', 'out'], ['stderr', 'err']]));
    expect((await fx.rt.runc.state(b.id))?.status).toBe('stopped');
    await fx.rt.runc.delete(b.id);
    expect(await fx.rt.runc.state(b.id)).toBeUndefined();
    await fx.rt.runc.delete(b.id); // already gone is success
    await fx.rt.monitor.clearExit(b.id);
    expect(await fx.rt.monitor.exitStatus(b.id)).toBeUndefined();
  });

  it('keeps the container running after the node process that created it exits', async () => {
    const b = await fx.bundle(['sleep', '300']);
    const script = path.join(fx.dir, 'starter.ts');
    const runtimeIndex = fileURLToPath(new URL('../../src/runtime/index.ts', import.meta.url));
    const hostTs = fileURLToPath(new URL('../../src/host.ts', import.meta.url));
    await fsp.writeFile(script, `
      import { createRuntime } from ${JSON.stringify(runtimeIndex)};
      import { probeHost } from ${JSON.stringify(hostTs)};
      const layout = JSON.parse(process.env.BERTH_TEST_LAYOUT);
      const req = JSON.parse(process.env.BERTH_TEST_REQ);
      const rt = createRuntime(layout, await probeHost());
      await rt.monitor.create(req);
      await rt.runc.start(req.id);
    `);
    const viteNode = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url));
    const env = { ...process.env, BERTH_TEST_LAYOUT: JSON.stringify(fx.layout), BERTH_TEST_REQ: JSON.stringify({ ...b, tty: false, openStdin: false }) };
    // The starter exits as soon as the container runs; conmon has daemonized away from it.
    await execFileP(viteNode, [script], { timeout: 30_000, env, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
    const st = await fx.rt.runc.state(b.id);
    expect(st?.status).toBe('running');
    expect(await fx.rt.monitor.alive(b.id)).toBe(true);
    await fx.rt.runc.kill(b.id, 'SIGKILL');
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(137);
  });

  it('records 137 when the container process is killed from outside', async () => {
    const b = await fx.bundle(['sleep', '300']);
    const { pid } = await fx.rt.monitor.create({ ...b, tty: false, openStdin: false });
    await fx.rt.runc.start(b.id);
    process.kill(pid, 'SIGKILL');
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(137);
    await until(async () => !(await fx.rt.monitor.alive(b.id)));
    const err = await fx.rt.runc.kill(b.id, 'SIGTERM').catch((e: unknown) => e);
    expect(isAlreadyGone(err)).toBe(true);
  });

  it('pauses and resumes, lists and ps', async () => {
    const b = await fx.bundle(['sleep', '300']);
    const { pid } = await fx.rt.monitor.create({ ...b, tty: false, openStdin: false });
    await fx.rt.runc.start(b.id);
    expect(await fx.rt.runc.list()).toEqual([b.id]);
    expect(await fx.rt.runc.ps(b.id)).toContain(pid);
    await fx.rt.runc.pause(b.id);
    expect((await fx.rt.runc.state(b.id))?.status).toBe('paused');
    await fx.rt.runc.resume(b.id);
    expect((await fx.rt.runc.state(b.id))?.status).toBe('running');
    await fx.rt.runc.update(b.id, { pids: { limit: 50 } });
    const stats = await fx.rt.cgroups.stats(b.cgroupsPath);
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memoryUsage).toBeGreaterThan(0);
    await fx.rt.runc.kill(b.id, 'SIGKILL', { all: true });
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(137);
  });

  it('execs with output and exit code, and maps a missing command to 127', async () => {
    const b = await fx.bundle(['sleep', '300']);
    await fx.rt.monitor.create({ ...b, tty: false, openStdin: false });
    await fx.rt.runc.start(b.id);
    const out = sink();
    const err = sink();
    const proc = { args: ['sh', '-c', 'echo hello; echo oops >&2; exit 5'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } };
    const res = await fx.rt.runc.exec(b.id, { process: proc, detach: false, io: { stdout: out.stream, stderr: err.stream } });
    expect(res.exitCode).toBe(5);
    expect(out.text()).toBe('hello\n');
    expect(err.text()).toBe('oops\n');

    const piped = sink();
    const withStdin = await fx.rt.runc.exec(b.id, { process: { ...proc, args: ['cat'] }, detach: false, io: { stdin: Readable.from(['piped in\n']), stdout: piped.stream } });
    expect(withStdin.exitCode).toBe(0);
    expect(piped.text()).toBe('piped in\n');

    const missing = await fx.rt.runc.exec(b.id, { process: { ...proc, args: ['nosuchcmd'] }, detach: false, io: { stderr: err.stream } }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CommandNotFoundError);
    expect(err.text()).toBe('oops\n'); // runc's complaint became the error, not output

    const detached = await fx.rt.runc.exec(b.id, { process: { ...proc, args: ['sleep', '100'] }, detach: true });
    expect(await fx.rt.runc.ps(b.id)).toContain(detached.pid);
  });

  it('fails create of a missing command with CommandNotFoundError and leaves nothing', async () => {
    const b = await fx.bundle(['nosuchcmd']);
    const err = await fx.rt.monitor.create({ ...b, tty: false, openStdin: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandNotFoundError);
    expect(runcIds(fx.layout)).toEqual([]);
    expect(await fx.rt.monitor.alive(b.id)).toBe(false);
    expect(await fsp.readdir(fx.layout.exits)).toEqual([]);
  });

  it('feeds piped stdin to the container and streams its output', async () => {
    const b = await fx.bundle(['cat']);
    await fx.rt.monitor.create({ ...b, tty: false, openStdin: true });
    await fx.rt.runc.start(b.id);
    const out = sink();
    const exited = () => fx.rt.monitor.exitStatus(b.id).then((s) => s !== undefined);
    const attached = fx.rt.monitor.attach(b.id, { stdin: Readable.from(['hi\n', 'there\n']), stdout: out.stream, logPath: b.logPath, tty: false }, exited);
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(0);
    await attached;
    expect(out.text()).toBe('hi\nthere\n');
  });

  it('follows a log until the container exits', async () => {
    const b = await fx.bundle(['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; printf tail']);
    await fx.rt.monitor.create({ ...b, tty: false, openStdin: false });
    const exited = () => fx.rt.monitor.exitStatus(b.id).then((s) => s !== undefined);
    const following = collect(fx.rt.monitor.readLog(b.logPath, { follow: true, stopWhen: exited }));
    await fx.rt.runc.start(b.id);
    const entries = await following;
    expect(entries.map((e) => e.line).join('|')).toBe('line1|line2|line3|tail');
    expect(entries.at(-1)?.partial).toBe(true);
    expect(await collect(fx.rt.monitor.readLog(b.logPath, { tail: 2 }))).toHaveLength(2);
  });
  it('maps a non-executable command to CannotInvokeError', async () => {
    const b = await fx.bundle(['/bin/notexec']);
    await fsp.writeFile(path.join(b.bundle, 'rootfs', 'bin', 'notexec'), 'data', { mode: 0o644 });
    const err = await fx.rt.monitor.create({ ...b, tty: false, openStdin: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CannotInvokeError);
    expect(runcIds(fx.layout)).toEqual([]);
  });

  it('runs a terminal container: stdin, resize, and the exit command with its arguments', async () => {
    const b = await fx.bundle(['sh', '-c', 'sleep 0.3; stty size; read x; echo got:$x'], { tty: true });
    const marker = path.join(fx.dir, 'exit-command-ran');
    const exitCommand = ['/bin/sh', '-c', `echo "$@" > ${marker}`, 'sh', 'cleanup', b.id];
    await fx.rt.monitor.create({ ...b, tty: true, openStdin: true, exitCommand });
    await fx.rt.runc.start(b.id);
    await fx.rt.monitor.resize(b.id, { rows: 33, columns: 101 });
    const out = sink();
    const exited = () => fx.rt.monitor.exitStatus(b.id).then((s) => s !== undefined);
    const attached = fx.rt.monitor.attach(b.id, { stdin: Readable.from(['hello\n']), stdout: out.stream, logPath: b.logPath, tty: true }, exited);
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(0);
    await attached;
    expect(out.text()).toContain('33 101\r\n');
    expect(out.text()).toContain('got:hello\r\n');
    await until(() => fsp.readFile(marker, 'utf8').then((t) => t === `cleanup ${b.id}\n`, () => false));
  });

  it("attaching gives a tty container the client terminal's size and follows its resizes", async () => {
    const b = await fx.bundle(['sh', '-c', 'trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done'], { tty: true });
    await fx.rt.monitor.create({ ...b, tty: true, openStdin: false });
    await fx.rt.runc.start(b.id);
    // The trap is set once "ready" is out; a resize before it would be lost.
    await until(() => fsp.readFile(b.logPath, 'utf8').then((t) => t.includes('ready'), () => false));
    const term = fakeTerminal(33, 101);
    const out = sink();
    const exited = () => fx.rt.monitor.exitStatus(b.id).then((s) => s !== undefined);
    const attached = fx.rt.monitor.attach(b.id, { stdout: out.stream, logPath: b.logPath, tty: true, terminal: term }, exited);
    await until(async () => out.text().includes('33 101\r\n'));
    term.resize(40, 120);
    await until(async () => out.text().includes('40 120\r\n'));
    await fx.rt.runc.kill(b.id, 'SIGKILL');
    expect(await fx.rt.monitor.waitExit(b.id)).toBe(137);
    await attached;
    expect(term.listeners()).toBe(0);
  });
});
