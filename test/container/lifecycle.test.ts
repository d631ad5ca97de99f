import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadStateError, CannotInvokeError, CommandNotFoundError, InvalidArgumentError, NotFoundError, AlreadyExistsError } from '../../src/api/index.js';
import { sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

let t: TestEngine;
beforeAll(async () => {
  t = await testEngine();
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
  if (t) expect(await findLeaks(t.root, t.runroot, { final: true })).toEqual([]);
});

const none = { networks: ['none'] };

async function runOut(cmd: string[], extra: Record<string, unknown> = {}) {
  const out = sink();
  const err = sink();
  const res = await t.engine.run({ image: 'busybox', command: cmd, autoRemove: true, network: none, ...extra }, { io: { stdout: out.stream, stderr: err.stream } });
  return { code: res.exitCode, out: out.text(), err: err.text() };
}

describe('run', () => {
  it('runs a process and returns its output and exit code', async () => {
    const r = await runOut(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r.code).toBe(3);
    expect(r.out).toBe('out\n');
    expect(r.err).toBe('err\n');
  });

  it('gives Docker default capabilities', async () => {
    const r = await runOut(['grep', 'CapEff', '/proc/self/status']);
    expect(r.out.trim()).toBe('CapEff:\t00000000a80425fb');
  });

  it('reports a missing command as 127 and a non-executable one as 126', async () => {
    await expect(runOut(['nosuchcommand'])).rejects.toBeInstanceOf(CommandNotFoundError);
    await expect(runOut(['/etc/passwd'])).rejects.toBeInstanceOf(CannotInvokeError);
    const left = await t.engine.containers.list({ all: true });
    expect(left).toHaveLength(0);
  });

  it('removes a --rm container whose start failed, as Docker\'s daemon; keeps one without --rm', async () => {
    const rm = await t.engine.containers.create({ image: 'busybox', command: ['nosuchcommand'], autoRemove: true, network: { networks: ['none'] } });
    await expect(t.engine.containers.start(rm.id)).rejects.toBeInstanceOf(CommandNotFoundError);
    await expect(t.engine.containers.inspect(rm.id)).rejects.toBeInstanceOf(NotFoundError);
    const kept = await t.engine.containers.create({ image: 'busybox', command: ['nosuchcommand'], network: { networks: ['none'] } });
    await expect(t.engine.containers.start(kept.id)).rejects.toBeInstanceOf(CommandNotFoundError);
    expect((await t.engine.containers.inspect(kept.id)).State.Status).toBe('created');
    await t.engine.containers.remove(kept.id, { force: true });
  });

  it('refuses an unknown image and bad flags with typed errors', async () => {
    // pull never: a missing short name is otherwise pulled from docker.io, and tests stay on 127.0.0.1.
    await expect(t.engine.run({ image: 'no-such-image', command: ['true'], pull: 'never' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(t.engine.run({ image: 'busybox', command: ['true'], resources: { memory: 'lots' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.engine.run({ image: 'busybox', command: ['true'], capAdd: ['NOT_A_CAP'] })).rejects.toThrow(/NOT_A_CAP/);
    expect(await t.engine.containers.list({ all: true })).toHaveLength(0);
  });

  it('kills a process that goes over --memory (OOM)', async () => {
    const { id } = await t.engine.containers.run({
      image: 'busybox', network: none, resources: { memory: '16m', memorySwap: '16m' },
      command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
    }, { detach: true });
    const code = await t.engine.containers.wait(id);
    const info = await t.engine.containers.inspect(id);
    expect(code).toBe(137);
    expect(info.State.OOMKilled).toBe(true);
    await t.engine.containers.remove(id);
  });

  it('stops a fork bomb at --pids-limit', async () => {
    const r = await runOut(['sh', '-c', 'for i in $(seq 40); do sleep 5 & done 2>/dev/null; sleep 0.3; ps | grep -c "sleep 5"'], { resources: { pidsLimit: 10 } });
    expect(Number(r.out.trim())).toBeLessThan(10);
  });

  it('applies cgroup limits as docker does', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, command: ['sleep', '30'], resources: { memory: '64m', cpus: '0.5', pidsLimit: 50 } }, { detach: true });
    const cg = (ctrl: string, file: string) => readFile(`/sys/fs/cgroup/${ctrl}/berth/${id}/${file}`, 'utf8').then((s) => s.trim());
    expect(await cg('memory', 'memory.limit_in_bytes')).toBe('67108864');
    expect(await cg('memory', 'memory.memsw.limit_in_bytes').catch(() => '134217728')).toBe('134217728');
    expect(await cg('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(await cg('pids', 'pids.max')).toBe('50');
    await t.engine.containers.update(id, { memory: '128m', memorySwap: '256m' });
    expect(await cg('memory', 'memory.limit_in_bytes')).toBe('134217728');
    await t.engine.containers.remove(id, { force: true });
  });
});

describe('lifecycle', () => {
  it('runs detached, execs, pauses, stops and removes', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'life', network: none, command: ['sh', '-c', 'trap "echo bye; exit 0" TERM; echo started; while :; do sleep 0.1; done'] }, { detach: true });
    expect((await t.engine.containers.list())[0]?.names).toEqual(['life']);

    const out = sink();
    const ex = await t.engine.containers.exec('life', { command: ['sh', '-c', 'echo $((6*7)); exit 4'] }, { stdout: out.stream });
    expect(ex.exitCode).toBe(4);
    expect(out.text()).toBe('42\n');
    await expect(t.engine.containers.exec('life', { command: ['nope'] })).rejects.toBeInstanceOf(CommandNotFoundError);

    await t.engine.containers.pause('life');
    expect((await t.engine.containers.inspect('life')).State.Status).toBe('paused');
    const frozen = await readFile(`/sys/fs/cgroup/freezer/berth/${id}/freezer.state`, 'utf8');
    expect(frozen.trim()).toBe('FROZEN');
    await t.engine.containers.unpause('life');

    await expect(t.engine.containers.remove('life')).rejects.toBeInstanceOf(BadStateError);
    await expect(t.engine.containers.start('life')).rejects.toBeInstanceOf(BadStateError);
    await expect(t.engine.containers.create({ image: 'busybox', name: 'life', command: ['true'] })).rejects.toBeInstanceOf(AlreadyExistsError);

    const lines: string[] = [];
    for await (const e of t.engine.containers.logs('life')) lines.push(`${e.stream}:${e.line}`);
    expect(lines).toEqual(['stdout:started']);

    // stop sends the stop signal first: the container's trap runs and it exits on its own.
    await t.engine.containers.stop('life', { timeout: 5 });
    const info = await t.engine.containers.inspect('life');
    expect(info.State.Status).toBe('exited');
    expect(info.State.ExitCode).toBe(0);
    const after: string[] = [];
    for await (const e of t.engine.containers.logs('life')) after.push(e.line);
    expect(after).toEqual(['started', 'bye']);
    await t.engine.containers.remove('life');
    await expect(t.engine.containers.inspect('life')).rejects.toBeInstanceOf(NotFoundError);
    expect(execFileSync('runc', ['--root', `${t.runroot}/runc`, 'list', '-q'], { encoding: 'utf8' }).trim()).toBe('');
  });

  it('kills a container that ignores the stop signal after the timeout', async () => {
    // sleep as PID 1 has no SIGTERM handler, so the kernel ignores TERM: docker stop ends it with SIGKILL.
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, command: ['sleep', '300'] }, { detach: true });
    await t.engine.containers.stop(id, { timeout: 1 });
    expect((await t.engine.containers.inspect(id)).State.ExitCode).toBe(137);
    await t.engine.containers.remove(id);
  });

  it('keeps a --rm container through a manual restart, and removes it when it stops', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, autoRemove: true, command: ['sleep', '300'] }, { detach: true });
    await t.engine.containers.restart(id, { timeout: 0 });
    expect((await t.engine.containers.inspect(id)).State.Status).toBe('running');
    await t.engine.containers.stop(id, { timeout: 0 });
    await expect(t.engine.containers.inspect(id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('records a kill from outside with the real exit code', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, command: ['sleep', '300'] }, { detach: true });
    const pid = (await t.engine.containers.inspect(id)).State.Pid;
    process.kill(pid, 'SIGKILL');
    expect(await t.engine.containers.wait(id)).toBe(137);
    expect((await t.engine.containers.inspect(id)).State.Status).toBe('exited');
    await t.engine.containers.remove(id);
  });

  it('restarts on failure up to the limit', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, restart: 'on-failure:2', command: ['sh', '-c', 'exit 1'] }, { detach: true });
    for (let i = 0; i < 100; i++) {
      const info = await t.engine.containers.inspect(id);
      if (info.RestartCount === 2 && info.State.Status === 'exited') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const info = await t.engine.containers.inspect(id);
    expect(info.RestartCount).toBe(2);
    expect(info.State.Status).toBe('exited');
    await t.engine.containers.remove(id, { force: true });
  });

  it('feeds stdin with -i', async () => {
    const { Readable } = await import('node:stream');
    const out = sink();
    const res = await t.engine.run({ image: 'busybox', network: none, openStdin: true, autoRemove: true, command: ['sh', '-c', 'read x; echo got:$x'] },
      { io: { stdin: Readable.from(['hello\n']), stdout: out.stream } });
    expect(res.exitCode).toBe(0);
    expect(out.text()).toBe('got:hello\n');
  });
});

describe('events', () => {
  it('reports container and image actions in order, filtered', async () => {
    const since = new Date().toISOString();
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'evented', network: none, command: ['true'] }, { detach: true });
    await t.engine.containers.wait(id);
    await t.engine.containers.remove(id);
    await t.engine.images.tag('busybox', 'localhost/evented:v1');
    await t.engine.images.remove('localhost/evented:v1');
    const seen: string[] = [];
    const events: { type: string; id: string; attributes: Record<string, string> }[] = [];
    for await (const ev of t.engine.system.events({ since, until: new Date(Date.now() + 1).toISOString() })) {
      seen.push(`${ev.type}:${ev.action}`);
      events.push(ev);
    }
    // Only this test's objects: a --rm container of an earlier test may finish its cleanup in the window.
    const mine = (ev: { type: string; id: string; attributes: Record<string, string> }) => ev.type === 'image' || ev.id === id;
    expect(seen.filter((_s, i) => mine(events[i]!))).toEqual(['container:create', 'container:start', 'container:die', 'container:destroy', 'image:tag', 'image:untag']);
    const onlyImages: string[] = [];
    for await (const ev of t.engine.system.events({ since, until: new Date(Date.now() + 1).toISOString(), filters: ['type=image'] })) onlyImages.push(ev.action);
    expect(onlyImages).toEqual(['tag', 'untag']);
  });
});
