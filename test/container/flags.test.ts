/**
 * Issue 10, the run/create flags Docker users type daily: each one really applied in a real container
 * (id -G, /proc/1/oom_score_adj, the cgroup runc made, the OCI config.json, -P), shown in inspect where
 * Docker shows it, and each bad value refused at create with exit 125 and nothing left behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
const CGROUP_PARENT = `berthflags${process.pid}`;
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(3950 + (process.pid % 50));
  await t.engine.images.ensureDefault();
}, 120_000);
afterAll(async () => {
  try {
    await t?.cleanup();
  } finally {
    // runc makes the parent cgroup and, as under Docker, nothing removes it: the test does.
    for (const hier of readdirSync('/sys/fs/cgroup')) {
      const dir = path.join('/sys/fs/cgroup', hier, CGROUP_PARENT);
      if (existsSync(dir)) rmdirSync(dir);
    }
  }
});

const berth = (...args: string[]) => t.cli(...args);

async function ok(...args: string[]): Promise<string> {
  const res = await berth(...args);
  expect(res.exitCode, res.stderr).toBe(0);
  return res.stdout.trim();
}

async function inspect(ref: string, template: string): Promise<unknown> {
  return JSON.parse(await ok('inspect', '-f', `{{json ${template}}}`, ref));
}

const containers = async () => (await berth('ps', '-a', '-q', '--no-trunc')).stdout;

describe('bad values are refused at create, with nothing left behind', () => {
  it.each([
    [['--group-add', ''], /invalid --group-add/],
    [['--group-add', 'a b'], /invalid --group-add/],
    [['--group-add', '99999999999'], /out of range/],
    [['--oom-score-adj', '1001'], /range for oom score adj is \[-1000, 1000\]/],
    [['--oom-score-adj', '-1001'], /range for oom score adj/],
    [['--oom-score-adj', 'lots'], /not an integer/],
    [['--expose', '0'], /invalid range format for --expose: 0/],
    [['--expose', '70000'], /invalid range format for --expose: 70000/],
    [['--expose', '90-80'], /invalid range format for --expose: 90-80/],
    [['--expose', '80/icmp'], /invalid range format for --expose/],
    [['--expose', 'http'], /invalid range format for --expose/],
    [['--label-file', '/nonexistent/labels'], /invalid --label-file.*ENOENT/],
    [['--annotation', '=v'], /invalid --annotation/],
    [['--cgroup-parent', '../escape'], /invalid --cgroup-parent/],
    [['--cgroup-parent', 'a:b'], /invalid --cgroup-parent/],
    [['--cgroup-parent', '/'], /invalid --cgroup-parent/],
    [['--cgroupns', 'shared'], /invalid cgroup namespace mode: shared/],
    [['--cidfile', '/nonexistent/dir/cid'], /container ID file/],
    [['--runtime', 'nosuch'], /unknown or invalid runtime name: nosuch/],
    [['--log-opt', 'max-size=10m', '--log-opt', 'max-file=101'], /max-file=101 is more than 100/],
    [['--log-opt', 'max-size=10m', '--log-opt', 'max-file=0'], /max-file "0" is not a whole number of at least 1/],
    [['--log-opt', 'max-file=1'], /max-file cannot be set when max-size is not set/],
    [['--log-opt', 'max-size=lots'], /invalid --log-opt max-size: "lots" is not a size/],
    [['--log-opt', 'max-size=0'], /max-size must be a positive size/],
    [['--log-opt', 'compress=true'], /unknown log opt 'compress'/],
    [['--runtime', '/etc/passwd'], /invalid --runtime: \/etc\/passwd is not an executable file/],
    [['--runtime', '/nonexistent/runc'], /invalid --runtime.*ENOENT/],
  ])('%j', async (flags, message) => {
    const before = await containers();
    const res = await berth('create', ...flags, 'busybox', 'true');
    expect(res.exitCode, res.stderr).toBe(125);
    expect(res.stderr).toMatch(message);
    expect(await containers()).toBe(before);
  });

  it('refuses a label file line whose name holds blanks, naming the line', async () => {
    const file = path.join(t.root, 'bad-labels');
    await fsp.writeFile(file, 'ok=1\nbad name=2\n');
    const res = await berth('create', '--label-file', file, 'busybox');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(/line 2/);
  });
});

describe('--group-add', () => {
  it('adds groups by number and by the image\'s group name (id -G), shown in inspect', async () => {
    await ok('create', '--name', 'groups', '--group-add', '4321', '--group-add', 'daemon', 'busybox', 'id', '-G');
    expect(await inspect('groups', '.HostConfig.GroupAdd')).toEqual(['4321', 'daemon']);
    await ok('start', 'groups');
    await ok('wait', 'groups');
    // busybox's /etc/group: daemon is GID 1
    expect((await ok('logs', 'groups')).split(' ')).toEqual(expect.arrayContaining(['0', '1', '4321']));
    await ok('rm', 'groups');
  });

  it('fails the start when the image has no such group, as Docker does', async () => {
    const res = await berth('run', '--rm', '--group-add', 'nosuchgroup', 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(/unable to find group nosuchgroup/);
  });
});

describe('--oom-score-adj', () => {
  it('sets the container process\'s /proc/1/oom_score_adj', async () => {
    expect(await ok('run', '--rm', '--oom-score-adj', '500', 'busybox', 'cat', '/proc/1/oom_score_adj')).toBe('500');
    const id = await ok('create', '--oom-score-adj', '700', 'busybox');
    expect(await inspect(id, '.HostConfig.OomScoreAdj')).toBe(700);
    await ok('rm', id);
  });

  it('a value below the engine\'s own is refused at create without CAP_SYS_RESOURCE, which the kernel asks for', async () => {
    const status = await fsp.readFile('/proc/self/status', 'utf8');
    const bounding = BigInt('0x' + /CapBnd:\s*([0-9a-f]+)/.exec(status)![1]);
    const own = Number((await fsp.readFile('/proc/self/oom_score_adj', 'utf8')).trim());
    const res = await berth('run', '--rm', '--oom-score-adj', String(own - 1), 'busybox', 'cat', '/proc/1/oom_score_adj');
    if (bounding & (1n << 24n)) { // CAP_SYS_RESOURCE
      expect(res.stdout.trim()).toBe(String(own - 1));
    } else {
      expect(res.exitCode).toBe(125);
      expect(res.stderr).toMatch(/lacks CAP_SYS_RESOURCE/);
    }
  });
});

describe('--cidfile', () => {
  it('holds the new container\'s id; an existing file is refused and kept', async () => {
    const file = path.join(t.root, 'cid');
    const id = await ok('run', '-d', '--cidfile', file, 'busybox', 'true');
    expect(await fsp.readFile(file, 'utf8')).toBe(id);
    expect(await inspect(id, '.HostConfig.ContainerIDFile')).toBe(file);
    const before = await containers();
    const res = await berth('create', '--cidfile', file, 'busybox');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(`container ID file found, make sure the other container isn't running or delete ${file}`);
    expect(await fsp.readFile(file, 'utf8')).toBe(id);
    expect(await containers()).toBe(before);
    await ok('rm', '-f', id);
  });

  it('is removed again when the create fails', async () => {
    const file = path.join(t.root, 'cid-failed');
    const res = await berth('create', '--cidfile', file, '--memory', 'lots', 'busybox');
    expect(res.exitCode).toBe(125);
    expect(existsSync(file)).toBe(false);
  });
});

describe('--expose', () => {
  it('adds to ExposedPorts (ranges expanded) and -P publishes them', async () => {
    const id = await ok('run', '-d', '-P', '--expose', '7000-7001/udp', '--expose', '8080', 'busybox', 'sleep', '60');
    expect(await inspect(id, '.Config.ExposedPorts')).toEqual({ '7000/udp': {}, '7001/udp': {}, '8080/tcp': {} });
    const ports = await inspect(id, '.NetworkSettings.Ports') as Record<string, { HostPort: string }[]>;
    expect(Object.keys(ports).sort()).toEqual(['7000/udp', '7001/udp', '8080/tcp']);
    for (const bindings of Object.values(ports)) expect(Number(bindings[0]!.HostPort)).toBeGreaterThan(0);
    await ok('rm', '-f', id);
  });
});

describe('--label-file', () => {
  it('reads NAME=VALUE and NAME lines, skips comments and blanks; --label wins', async () => {
    const file = path.join(t.root, 'labels');
    await fsp.writeFile(file, '# a comment\n  app=web\nflag\n\nteam=a b\r\nenv=dev\n');
    const id = await ok('create', '--label-file', file, '--label', 'env=prod', 'busybox');
    expect(await inspect(id, '.Config.Labels')).toEqual({ app: 'web', flag: '', team: 'a b', env: 'prod' });
    expect(await ok('ps', '-a', '--filter', 'label=app=web', '-q', '--no-trunc')).toBe(id);
    await ok('rm', id);
  });
});

describe('--annotation', () => {
  it('lands in the OCI config.json and in HostConfig.Annotations', async () => {
    const id = await ok('create', '--annotation', 'org.example.key=value 1', '--annotation', 'empty', 'busybox', 'true');
    expect(await inspect(id, '.HostConfig.Annotations')).toEqual({ 'org.example.key': 'value 1', empty: '' });
    await ok('start', id);
    await ok('wait', id);
    const config = JSON.parse(await fsp.readFile(path.join(t.root, 'containers', id, 'bundle', 'config.json'), 'utf8'));
    expect(config.annotations).toMatchObject({ 'org.example.key': 'value 1', empty: '' });
    await ok('rm', id);
  });
});

describe('--cgroup-parent and --cgroupns', () => {
  const v1 = existsSync('/sys/fs/cgroup/memory/cgroup.procs');

  it.runIf(v1)('makes the container\'s cgroup under the parent, and rm removes it', async () => {
    const id = await ok('run', '-d', '--cgroup-parent', CGROUP_PARENT, 'busybox', 'sleep', '60');
    expect(await inspect(id, '.HostConfig.CgroupParent')).toBe(CGROUP_PARENT);
    const dir = `/sys/fs/cgroup/memory/${CGROUP_PARENT}/${id}`;
    const pid = String(await inspect(id, '.State.Pid'));
    expect((await fsp.readFile(path.join(dir, 'cgroup.procs'), 'utf8')).split('\n')).toContain(pid);
    // Docker's default cgroupns on v1 is host: the container sees its path from the root.
    expect(await ok('exec', id, 'cat', '/proc/self/cgroup')).toContain(`:memory:/${CGROUP_PARENT}/${id}`);
    expect(await ok('stats', '--no-stream', '--format', '{{.ID}}', id)).toBe(id.slice(0, 12));
    await ok('rm', '-f', id);
    expect(existsSync(dir)).toBe(false);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  });

  it('private gives a cgroup namespace of its own, host the host\'s; the default on v1 is host, as Docker\'s', async () => {
    const hostNs = await fsp.readlink('/proc/self/ns/cgroup');
    expect(await ok('run', '--rm', '--cgroupns', 'private', 'busybox', 'readlink', '/proc/self/ns/cgroup')).not.toBe(hostNs);
    expect(await ok('run', '--rm', '--cgroupns', 'host', 'busybox', 'readlink', '/proc/self/ns/cgroup')).toBe(hostNs);
    const priv = await ok('create', '--cgroupns', 'private', 'busybox');
    const dflt = await ok('create', 'busybox');
    expect(await inspect(priv, '.HostConfig.CgroupnsMode')).toBe('private');
    expect(await inspect(dflt, '.HostConfig.CgroupnsMode')).toBe(v1 ? 'host' : 'private');
    await ok('rm', priv, dflt);
  });
});

describe('-a/--attach', () => {
  it('attaches only the streams named; the exit code still comes back', async () => {
    const script = 'echo out; echo err >&2; exit 3';
    const out = await berth('run', '--rm', '-a', 'stdout', 'busybox', 'sh', '-c', script);
    expect([out.exitCode, out.stdout, out.stderr]).toEqual([3, 'out', '']);
    const err = await berth('run', '--rm', '-a', 'STDERR', 'busybox', 'sh', '-c', script);
    expect([err.exitCode, err.stdout, err.stderr]).toEqual([3, '', 'err']);
    const stdin = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'run', '--rm', '-i', '-a', 'stdin', '-a', 'stdout', 'busybox', 'cat'], { input: 'fed\n', reject: false, timeout: 60_000 });
    expect(stdin.stdout).toBe('fed');
  });

  it('is shown in inspect; -a with -d and unknown streams are refused', async () => {
    const before = await containers();
    const conflict = await berth('run', '-d', '-a', 'stdout', 'busybox', 'true');
    expect([conflict.exitCode, conflict.stderr]).toEqual([125, expect.stringMatching(/conflicting options: -a and -d/)]);
    const bad = await berth('run', '-a', 'stdtv', 'busybox', 'true');
    expect([bad.exitCode, bad.stderr]).toEqual([125, expect.stringMatching(/valid streams are STDIN, STDOUT and STDERR/)]);
    expect(await containers()).toBe(before);
    const name = 'attached-stderr';
    expect((await berth('run', '--name', name, '-a', 'stderr', 'busybox', 'true')).exitCode).toBe(0);
    expect(await ok('inspect', '-f', '{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}', name)).toBe('false false true');
    const detached = await ok('run', '-d', 'busybox', 'true');
    expect(await ok('inspect', '-f', '{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}', detached)).toBe('false false false');
    await ok('rm', '-f', name, detached);
  });
});

describe('--runtime and the engine config\'s runtimes', () => {
  it('runs every verb of the container through the runtime named, by path or by name from the config', async () => {
    const dir = path.join(t.root, 'rt');
    await fsp.mkdir(dir);
    const wrapper = path.join(dir, 'wrapped-runc');
    const log = path.join(dir, 'calls');
    await fsp.writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${log}\nexec runc "$@"\n`, { mode: 0o755 });
    const verbs = async () => (await fsp.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean)
      .map((l) => l.split(' ').find((w) => ['create', 'start', 'kill', 'delete', 'exec', 'state'].includes(w)));

    expect(await ok('run', '--rm', '--runtime', wrapper, 'busybox', 'echo', 'via path')).toBe('via path');
    expect(await verbs()).toEqual(expect.arrayContaining(['create', 'start', 'delete']));

    await fsp.rm(log);
    const config = path.join(dir, 'berth.json');
    await fsp.writeFile(config, JSON.stringify({ runtimes: { wrapped: { path: wrapper } }, 'default-runtime': 'wrapped' }));
    const id = await ok('--config', config, 'run', '-d', 'busybox', 'sleep', '60');
    expect(await ok('--config', config, 'inspect', '-f', '{{.HostConfig.Runtime}}', id)).toBe('wrapped');
    await ok('--config', config, 'exec', id, 'true');
    await ok('--config', config, 'rm', '-f', id);
    expect(new Set(await verbs())).toEqual(new Set(['create', 'start', 'exec', 'kill', 'delete', 'state']));

    // Without the config, the default is runc again, and the name is unknown.
    const plain = await ok('create', 'busybox');
    expect(await inspect(plain, '.HostConfig.Runtime')).toBe('runc');
    await ok('rm', plain);
    const res = await berth('create', '--runtime', 'wrapped', 'busybox');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(/unknown or invalid runtime name: wrapped/);
  });
});

describe('--log-opt max-size, max-file', () => {
  // 3000 numbered lines over ~6 s (~22 kB/s): the rotator, which looks once a second, rotates several times.
  const SCRIPT = 'i=0; while [ $i -lt 60 ]; do j=0; while [ $j -lt 50 ]; do echo line$((i*50+j)); j=$((j+1)); done; i=$((i+1)); sleep 0.1; done';
  const numbers = (out: string) => out.split('\n').filter(Boolean).map((l) => Number(/^line(\d+)$/.exec(l)?.[1] ?? NaN));
  const rotated = async (log: string) => (await fsp.readdir(path.dirname(log))).filter((f) => f.startsWith(path.basename(log) + '.')).sort();

  it('keeps max-file files as Docker does; logs reads them in order with no line lost; the attached client saw all', async () => {
    const res = await berth('run', '--name', 'rotated', '--log-opt', 'max-size=4k', '--log-opt', 'max-file=3', 'busybox', 'sh', '-c', SCRIPT);
    expect(res.exitCode, res.stderr).toBe(0);
    // The client held each file open across its rotation: it read every line.
    expect(numbers(res.stdout)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    const log = String(await inspect('rotated', '.LogPath'));
    expect(await rotated(log)).toEqual(['ctr.log.1', 'ctr.log.2']);
    // What is kept: the latest lines, consecutive across the three files (oldest dropped, none in between).
    const kept = numbers(await ok('logs', 'rotated'));
    expect(kept.at(-1)).toBe(2999);
    expect(kept[0]).toBeGreaterThan(0);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => kept[0]! + i));
    expect(numbers(await ok('logs', '--tail', '5', 'rotated'))).toEqual([2995, 2996, 2997, 2998, 2999]);
    expect(await inspect('rotated', '.HostConfig.LogConfig')).toEqual({ Type: 'k8s-file', Config: { 'max-size': '4k', 'max-file': '3' } });
    await ok('rm', 'rotated');
  });

  it('max-size alone keeps one file, started afresh exactly at max-size, with the latest lines', async () => {
    const res = await berth('run', '--name', 'one-file', '--log-opt', 'max-size=4k', 'busybox', 'sh', '-c', SCRIPT);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/WARNING: --log-opt max-size with one file/);
    const log = String(await inspect('one-file', '.LogPath'));
    expect(await rotated(log)).toEqual([]);
    // ~45 bytes a record; conmon starts afresh before the record that would pass the limit.
    expect((await fsp.stat(log)).size).toBeLessThanOrEqual(4096);
    const kept = numbers(await ok('logs', 'one-file'));
    expect(kept.at(-1)).toBe(2999);
    expect(kept[0]).toBeGreaterThan(0);
    await ok('rm', 'one-file');
  });
});

/** A berth command line in a new pty (util-linux script), with a way to type into it. */
function inPty(args: string[]) {
  const line = [BIN, '--root', t.root, '--runroot', t.runroot, ...args].join(' ');
  const child = spawn('script', ['-qfec', `${line}; echo EXIT=$?`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const done = new Promise<void>((resolve) => child.on('close', () => { clearTimeout(timer); resolve(); }));
  const until = async (what: string) => {
    for (let i = 0; i < 400 && !out.includes(what); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain(what);
  };
  return { type: (text: string) => child.stdin.write(Buffer.from(text, 'latin1')), until, done, text: () => out };
}

describe('--detach-keys', () => {
  it('run -it: ctrl-p,ctrl-q leaves the container running; attach types into the same shell and detaches with other keys', async () => {
    /** Types a command into the session's shell, then the detach keys; the client must end with 0. */
    const typeThenDetach = async (session: ReturnType<typeof inPty>, word: string, file: string, keys: string) => {
      session.type(`echo ${word} > ${file}\r`);
      await session.until(`echo ${word}`);
      session.type(keys);
      await session.done;
      expect(session.text()).toContain('EXIT=0');
      expect(await ok('inspect', '-f', '{{.State.Status}}', 'detachable')).toBe('running');
      expect(await ok('exec', 'detachable', 'cat', file)).toBe(word);
    };
    const run = inPty(['run', '-it', '--name', 'detachable', 'busybox', 'sh']);
    await run.until('/ # ');
    await typeThenDetach(run, 'typed', '/tmp/t', '\x10\x11');
    // The shell's stdin stayed open (a tty container's stdin outlives its clients, as in Docker).
    const again = inPty(['attach', '--detach-keys', 'ctrl-x,y', 'detachable']);
    await new Promise((r) => setTimeout(r, 500)); // let attach reach the shell: not a timing assertion
    await typeThenDetach(again, 'back', '/tmp/r', '\x18y');
    await ok('stop', '-t', '0', 'detachable');
    // start -ai takes them too.
    const started = inPty(['start', '-ai', '--detach-keys', 'ctrl-a,a', 'detachable']);
    await started.until('/ # ');
    await typeThenDetach(started, 'restarted', '/tmp/s', '\x01a');
    await ok('rm', '-f', 'detachable');
  });

  it('start: refused without -a, and when invalid before the container starts', async () => {
    await ok('create', '-it', '--name', 'keys-start', 'busybox', 'sh');
    for (const [args, message] of [
      [['start', '--detach-keys', 'ctrl-x,y', 'keys-start'], /--detach-keys.*no effect without --attach/],
      [['start', '-ai', '--detach-keys', 'ctrl-1', 'keys-start'], /invalid --detach-keys/],
    ] as const) {
      const res = await berth(...args);
      // Docker's exit code for a failed start
      expect(res.exitCode).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(await ok('inspect', '-f', '{{.State.Status}}', 'keys-start')).toBe('created');
    }
    await ok('rm', 'keys-start');
  });

  it('without a tty the keys are the container\'s input, as Docker passes them on', async () => {
    const res = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'run', '--rm', '-i', 'busybox', 'od', '-An', '-tx1'], { input: 'a\x10\x11b', reject: false, timeout: 60_000 });
    expect(res.stdout.trim().split(/\s+/)).toEqual(['61', '10', '11', '62']);
  });

  it('is refused with -d, where it would do nothing', async () => {
    const before = await containers();
    const res = await berth('run', '-d', '--detach-keys', 'ctrl-x,y', 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(/--detach-keys.*no effect with --detach/);
    expect(await containers()).toBe(before);
  });

  it.each([['ctrl-1'], ['ab'], ['']])('refuses %j before anything is created', async (keys) => {
    const before = await containers();
    const res = await berth('run', '--detach-keys', keys, 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(/invalid --detach-keys/);
    expect(await containers()).toBe(before);
  });
});
