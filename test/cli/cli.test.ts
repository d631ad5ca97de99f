/**
 * End to end: the built `bin/berth.js` against a real engine on its own root (run `npm run build` first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unmountUnder } from '../helpers/engine.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

let root = '';
let runroot = '';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: readonly string[], input?: string | Buffer): { child: ChildProcess; done: Promise<Result> } {
  // The file itself, as a user's shell runs it: its shebang line is part of what is tested.
  const child = spawn(BIN, ['--root', root, '--runroot', runroot, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin!.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const done = new Promise<Result>((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
  return { child, done };
}

const berth = (...args: string[]) => start(args).done;
const lines = (text: string) => text.split('\n').filter(Boolean);

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
  runroot = path.join('/run/berth', `c${path.basename(root).slice(-6)}`);
  const res = await berth('image', 'default');
  expect(res.stderr).toBe('');
  expect(res.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
});

afterAll(async () => {
  if (!root) return;
  await berth('system', 'reset', '--force');
  unmountUnder(root);
  unmountUnder(runroot);
  await rm(root, { recursive: true, force: true });
  await rm(runroot, { recursive: true, force: true });
});

describe('berth without an engine', () => {
  it('lists its commands in --help', async () => {
    const res = await berth('--help');
    expect(res.code).toBe(0);
    for (const name of ['run', 'ps', 'images', 'exec', 'logs', 'network', 'container', 'image']) expect(res.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it('exits 1 for an unknown command and 125 for an unknown flag, as docker', async () => {
    expect(await berth('frobnicate')).toMatchObject({ code: 1, stderr: "berth: 'frobnicate' is not a berth command.\nSee 'berth --help'\n" });
    expect(await berth('run', '--bogus', 'busybox')).toMatchObject({ code: 125, stderr: "unknown flag: --bogus\nSee 'berth run --help'.\n" });
  });

  it('prints its version', async () => {
    expect(await berth('--version')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Berth version \d+\.\d+\.\d+\n$/) });
  });
});

describe('berth run', () => {
  it('prints the container output and removes it with --rm', async () => {
    expect(await berth('run', '--rm', 'busybox', 'echo', 'hi')).toEqual({ code: 0, stdout: 'hi\n', stderr: '' });
    expect((await berth('ps', '-a', '-q')).stdout).toBe('');
  });

  it('hands every argument after the image to the container, even ones node itself knows', async () => {
    // Node 20 reads --env-file from anywhere in its argv unless told where its own options end.
    const res = await berth('run', '--rm', 'busybox', 'echo', '--env-file', '/nonexistent', '--inspect');
    expect(res).toMatchObject({ code: 0, stdout: '--env-file /nonexistent --inspect\n' });
  });

  it("exits with the container's exit code", async () => {
    expect((await berth('run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'))).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('passes stdin with -i', async () => {
    expect(await start(['run', '--rm', '-i', 'busybox', 'cat'], 'piped text\n').done).toMatchObject({ code: 0, stdout: 'piped text\n' });
  });

  it('exits 127 when the command is not found', async () => {
    const res = await berth('run', '--rm', 'busybox', 'no-such-command');
    expect(res.code).toBe(127);
    expect(res.stderr).toMatch(/^Error: .*no-such-command/);
  });

  it('exits 126 when the command cannot be invoked', async () => {
    const res = await berth('run', '--rm', 'busybox', '/etc/passwd');
    expect(res.code).toBe(126);
    expect(res.stderr).toMatch(/^Error: /);
  });

  it('exits 125 for an unknown image', async () => {
    // --pull never: a missing short name is otherwise pulled from docker.io, and tests stay on 127.0.0.1.
    const res = await berth('run', '--rm', '--pull', 'never', 'no-such-image-here', 'true');
    expect(res.code).toBe(125);
    expect(res.stderr).toMatch(/^Error: no such image: no-such-image-here\n/);
  });

  it('runs detached, prints the full ID, and lists the container as running', async () => {
    const run = await berth('run', '-d', '--name', 'cli-detached', '--network', 'none', 'busybox', 'sleep', '60');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const id = run.stdout.trim();
    expect((await berth('ps', '--format', '{{.ID}} {{.Names}} {{.State}}')).stdout).toContain(`${id.slice(0, 12)} cli-detached running`);
    expect((await berth('ps', '--no-trunc', '-q')).stdout).toContain(id);
    expect(await berth('exec', 'cli-detached', 'echo', 'inside')).toMatchObject({ code: 0, stdout: 'inside\n' });
    expect((await berth('exec', 'cli-detached', 'no-such-command')).code).toBe(127);
    // -e NAME takes the client's value, and leaves NAME out when the client has none (docker exec).
    process.env.BERTH_TEST_SET = 'from-client';
    delete process.env.BERTH_TEST_UNSET;
    const env = await berth('exec', '-e', 'BERTH_TEST_SET', '-e', 'BERTH_TEST_UNSET', 'cli-detached', 'env');
    delete process.env.BERTH_TEST_SET;
    expect(env.stdout).toContain('BERTH_TEST_SET=from-client\n');
    expect(env.stdout).not.toContain('BERTH_TEST_UNSET');
    expect(await berth('rm', '-f', 'cli-detached')).toMatchObject({ code: 0, stdout: 'cli-detached\n' });
  });

  it('forwards SIGTERM to an attached container (sig-proxy)', async () => {
    const name = 'cli-sigproxy';
    const { child, done } = start(['run', '--rm', '--name', name, '--network', 'none', 'busybox', 'sh', '-c', 'trap "exit 7" TERM; echo ready; while true; do sleep 0.1; done']);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); }));
    child.kill('SIGTERM');
    expect((await done).code).toBe(7);
  });
});

describe('berth ps, inspect, rm', () => {
  it('lists, inspects and removes an exited container', async () => {
    expect((await berth('run', '--name', 'cli-exited', '--network', 'none', 'busybox', 'sh', '-c', 'exit 3')).code).toBe(3);
    expect(lines((await berth('ps', '-a', '--format', '{{.Names}}')).stdout)).toContain('cli-exited');
    expect(lines((await berth('ps', '--format', '{{.Names}}')).stdout)).not.toContain('cli-exited');
    expect(await berth('inspect', '-f', '{{.State.ExitCode}} {{.State.Status}}', 'cli-exited')).toEqual({ code: 0, stdout: '3 exited\n', stderr: '' });

    const json = await berth('container', 'inspect', 'cli-exited');
    const parsed = JSON.parse(json.stdout) as { Name: string; State: { ExitCode: number } }[];
    expect(parsed).toHaveLength(1);
    expect(parsed[0]).toMatchObject({ Name: '/cli-exited', State: { ExitCode: 3 } });

    const table = lines((await berth('ps', '-a')).stdout);
    expect(table[0]).toMatch(/^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    expect(table.find((l) => l.endsWith('cli-exited'))).toMatch(/"sh -c exit 3" .* Exited \(3\) /);

    expect(await berth('rm', '-f', 'cli-exited')).toMatchObject({ code: 0, stdout: 'cli-exited\n' });
    expect(lines((await berth('ps', '-a', '--format', '{{.Names}}')).stdout)).not.toContain('cli-exited');
  });

  it('exits 1 for a missing container, as docker', async () => {
    const res = await berth('rm', 'no-such-container');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^Error: no such container: no-such-container\n/);
  });
});

describe('berth images', () => {
  it('lists the default image', async () => {
    expect(lines((await berth('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout)).toContain('localhost/busybox:latest');
    const table = lines((await berth('image', 'ls')).stdout);
    expect(table[0]).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$/);
    expect(table.find((l) => l.startsWith('localhost/busybox'))).toMatch(/^localhost\/busybox +latest +[0-9a-f]{12} +.* ago +[\d.]+[kMG]?B$/);
  });
});

describe('berth start -a, logs', () => {
  it("attaches to a started container and exits with its code; logs replay its output", async () => {
    expect((await berth('create', '--name', 'cli-started', '--network', 'none', 'busybox', 'sh', '-c', 'echo started; exit 4')).code).toBe(0);
    expect(await berth('start', '-a', 'cli-started')).toMatchObject({ code: 4, stdout: 'started\n' });
    expect(await berth('logs', 'cli-started')).toMatchObject({ code: 0, stdout: 'started\n' });
    expect(await berth('rm', 'cli-started')).toMatchObject({ code: 0 });
  });
});

describe('berth network', () => {
  it('creates, lists, inspects and removes a network', async () => {
    const name = `clinet${process.pid}`;
    const subnet = `10.233.${process.pid % 250}.0/24`;
    const created = await berth('network', 'create', '--subnet', subnet, name);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(lines((await berth('network', 'ls', '--format', '{{.Name}}')).stdout)).toEqual(expect.arrayContaining(['bridge', 'host', 'none', name]));
    expect((await berth('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Driver}}', name)).stdout).toBe(`${subnet} bridge\n`);
    expect(await berth('network', 'rm', name)).toMatchObject({ code: 0, stdout: `${name}\n` });
    expect(lines((await berth('network', 'ls', '-q', '--no-trunc')).stdout)).not.toContain(created.stdout.trim());
  });
});

describe('berth image save/load', () => {
  it('saves to a file and loads it back from stdin', async () => {
    const file = path.join(root, 'busybox.tar');
    expect(await berth('image', 'save', '-o', file, 'busybox')).toMatchObject({ code: 0, stderr: '' });
    expect((await berth('rmi', 'busybox')).code).toBe(0);
    expect(await start(['load'], await readFile(file)).done).toMatchObject({ code: 0, stdout: 'Loaded image: localhost/busybox:latest\n' });
    expect(lines((await berth('images', '--format', '{{.Repository}}')).stdout)).toContain('localhost/busybox');
  });
});
