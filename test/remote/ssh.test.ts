/**
 * Issue 19, part 1: a remote engine over ssh://. The "remote host" is a network namespace of this test
 * with Debian's sshd on an address of its own (a veth pair, a /30 of 10.254.X.0), a host key and a client
 * key made here, and a known_hosts file written here; ssh options come through BERTH_SSH_OPTS, so the
 * user's ~/.ssh is never read or written. The remote's berth is this worktree's, on its own root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, RemoteError, type RemoteEngineApi } from '../../src/api/index.js';
import { claimSlot, cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { descendantsNamed, inPty, listenerOf, remoteCli, resizePty, SIZE_THEN_WAIT } from './helpers.js';
import { killNetnsProcesses, sshdListening } from '../machine/sshhost.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const NS = `berth-t-ssh${process.pid}`;

let t: TestEngine;
let dir: string;
let claim: ReturnType<typeof claimSlot>;
let addr: string;
let hostVeth: string;
const sshds: ChildProcess[] = [];
let sshOpts: string;
const sshHomeBefore = existsSync(path.join(homedir(), '.ssh')) ? readdirSync(path.join(homedir(), '.ssh')).sort() : undefined;

const ip = (...args: string[]) => execa('ip', args, { timeout: 10_000 });

/** sshd in the namespace, in the foreground (-D), logging to stderr (-e): resolves once it listens. */
async function startSshd(config: string): Promise<void> {
  const child = spawn('nsenter', [`--net=/run/netns/${NS}`, '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshds.push(child);
  await sshdListening(child);
}

function sshdConfig(port: number, pathEnv: string, root: string, runroot: string): string {
  return [
    `ListenAddress ${addr}`, `Port ${port}`, `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd-${port}.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PermitRootLogin prohibit-password',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    // The remote user's environment gives the remote berth its root (issue 19: "the remote user's environment").
    `SetEnv PATH=${pathEnv} BERTH_ROOT=${root} BERTH_RUNROOT=${runroot}`, '',
  ].join('\n');
}

beforeAll(async () => {
  t = await testEngine(3460 + (process.pid % 40));
  dir = await mkdtemp(path.join(tmpdir(), 'berth-ssh-'));
  claim = claimSlot(3840 + (process.pid % 256));
  const x = claim.slot & 255;
  addr = `10.254.${x}.2`;
  hostVeth = `bts${x}h`;
  await ip('netns', 'add', NS);
  await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', `bts${x}n`);
  await ip('link', 'set', `bts${x}n`, 'netns', NS);
  await ip('addr', 'add', `10.254.${x}.1/30`, 'dev', hostVeth);
  await ip('link', 'set', hostVeth, 'up');
  await ip('-n', NS, 'addr', 'add', `${addr}/30`, 'dev', `bts${x}n`);
  await ip('-n', NS, 'link', 'set', `bts${x}n`, 'up');
  await ip('-n', NS, 'link', 'set', 'lo', 'up');
  for (const key of ['host_key', 'id']) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-test', '-f', path.join(dir, key)], { timeout: 10_000 });
  await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'id.pub')), { mode: 0o600 });
  const hostPub = (await readFile(path.join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(path.join(dir, 'known_hosts'), `${addr} ${hostPub}\n[${addr}]:2222 ${hostPub}\n`);
  await writeFile(path.join(dir, 'empty_known_hosts'), '');
  await mkdir(runtimeDir(), { mode: 0o700 });
  await mkdir(path.join(dir, 'bin'));
  await symlink(BIN, path.join(dir, 'bin', 'berth'));
  // sshd's privilege separation folder (Debian's unit makes it; there is no systemd here).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await writeFile(path.join(dir, 'sshd_config'), sshdConfig(22, `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`, t.root, t.runroot));
  await writeFile(path.join(dir, 'sshd_noberth'), sshdConfig(2222, '/usr/sbin:/usr/bin:/sbin:/bin', t.root, t.runroot));
  await startSshd(path.join(dir, 'sshd_config'));
  await startSshd(path.join(dir, 'sshd_noberth'));
  sshOpts = `-F /dev/null -i ${dir}/id -o UserKnownHostsFile=${dir}/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`;
}, 60_000);

afterAll(async () => {
  // The ssh masters of the shared connections (they would exit by themselves once idle), by their sockets.
  for (const rt of [runtimeDir(), path.join(dir ?? '', 'rt2')]) {
    const socks = path.join(rt, 'berth-ssh');
    if (dir && existsSync(socks)) for (const f of readdirSync(socks)) await execa('ssh', ['-S', path.join(socks, f), '-O', 'exit', 'x'], { reject: false, timeout: 10_000 });
  }
  // The service the remote's dial-stdio processes share (it would exit by itself once idle).
  const shared = t && await listenerOf(path.join(t.runroot, 'dial-stdio.sock'));
  if (shared) process.kill(shared, 'SIGTERM');
  for (const s of sshds) s.kill('SIGTERM');
  await Promise.all(sshds.map((s) => (s.exitCode !== null || s.signalCode !== null ? undefined : new Promise((r) => s.once('exit', r)))));
  await killNetnsProcesses(NS);
  await ip('netns', 'del', NS).catch(() => undefined);
  if (hostVeth) await ip('link', 'del', hostVeth).catch(() => undefined);
  claim?.release();
  try {
    await cleanupAll(t, dir);
  } finally {
    // Nothing of the test is left: sshd, the namespace, the veth, the keys; and ~/.ssh as it was.
    expect((await ip('netns', 'list')).stdout).not.toContain(NS);
    expect((await ip('link', 'show', hostVeth).catch((e: { exitCode: number }) => e)).exitCode).not.toBe(0);
    expect(existsSync(dir)).toBe(false);
    const after = existsSync(path.join(homedir(), '.ssh')) ? readdirSync(path.join(homedir(), '.ssh')).sort() : undefined;
    expect(after).toEqual(sshHomeBefore);
  }
}, 60_000);

// The shared ssh connections' sockets (src/remote/mux.ts) in the test's own runtime dir.
const runtimeDir = () => path.join(dir, 'rt');
const cli = (...args: string[]) => remoteCli({ BERTH_SSH_OPTS: sshOpts, XDG_CONFIG_HOME: dir, XDG_RUNTIME_DIR: runtimeDir() })(...args);

/** The pid of the ssh master on control socket `sock` (ssh -O check), or undefined when none answers. */
async function masterPid(sock: string): Promise<number | undefined> {
  const res = await execa('ssh', ['-S', sock, '-O', 'check', 'x'], { reject: false, timeout: 10_000 });
  const m = /pid=(\d+)/.exec(res.stderr);
  return m ? Number(m[1]) : undefined;
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('the CLI through -H ssh://', () => {
  it('run --rm answers the output and exit code; run -d and ps see the remote store', async () => {
    const host = `ssh://root@${addr}`;
    const run = await cli('-H', host, 'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo over-ssh; exit 5');
    expect([run.exitCode, run.stdout, run.stderr]).toEqual([5, 'over-ssh', '']);
    const d = await cli('-H', host, 'run', '-d', '--name', 's1', '--network', 'none', 'busybox', 'sleep', '60');
    expect(d.exitCode, d.stderr).toBe(0);
    expect((await cli('-H', host, 'ps', '--format', '{{.ID}} {{.Names}}')).stdout).toBe(`${d.stdout.slice(0, 12)} s1`);
    // The container is in the remote's store: the same root seen from here.
    expect((await t.engine.containers.inspect('s1')).State.Running).toBe(true);
    const ex = await cli('-H', host, 'exec', 's1', 'sh', '-c', 'echo from-exec; exit 6');
    expect([ex.exitCode, ex.stdout]).toEqual([6, 'from-exec']);
    expect((await cli('-H', host, 'rm', '-f', 's1')).stdout).toBe('s1');
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
  }, 90_000);

  it('a context over ssh, and a context name that exists', async () => {
    expect((await cli('context', 'create', 'nshost', '--host', `ssh://root@${addr}`)).exitCode).toBe(0);
    const again = await cli('context', 'create', 'nshost', '--host', `ssh://root@${addr}`);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('context nshost already exists');
    const run = await cli('--context', 'nshost', 'run', '--rm', '--network', 'none', 'busybox', 'echo', 'ctx');
    expect([run.exitCode, run.stdout]).toEqual([0, 'ctx']);
    expect((await cli('--context', 'nshost', 'ps', '-a', '-q')).stdout).toBe('');
    expect((await cli('context', 'rm', 'nshost')).exitCode).toBe(0);
  }, 90_000);
});

describe('streams through -H ssh:// (issue 19, part 2)', () => {
  const env = () => ({ BERTH_SSH_OPTS: sshOpts, XDG_CONFIG_HOME: dir, XDG_RUNTIME_DIR: runtimeDir() });

  it('run -it: the terminal\'s size, its resizes and the exit code; exec -it likewise', async () => {
    const host = `ssh://root@${addr}`;
    const s = inPty(['-H', host, 'run', '-it', '--name', 'ssh-tty', '--network', 'none', 'busybox', ...SIZE_THEN_WAIT(3)], env());
    await s.until('ready');
    expect(s.lines()[0]).toBe('33 101');
    await resizePty(s, 40, 120);
    await s.until('40 120');
    const e = inPty(['-H', host, 'exec', '-it', 'ssh-tty', ...SIZE_THEN_WAIT(4, '/tmp/stop-exec')], env());
    await e.until('ready');
    expect(e.lines()[0]).toBe('33 101');
    await resizePty(e, 42, 122);
    await e.until('42 122');
    // The exec ends first: the container's end would kill it.
    expect((await cli('-H', host, 'exec', 'ssh-tty', 'touch', '/tmp/stop-exec')).exitCode).toBe(0);
    expect(await e.done).toBe(4);
    expect((await cli('-H', host, 'exec', 'ssh-tty', 'touch', '/tmp/stop')).exitCode).toBe(0);
    expect(await s.done).toBe(3);
    expect((await cli('-H', host, 'rm', 'ssh-tty')).exitCode).toBe(0);
  }, 90_000);

  it('exec -i without a tty: the end of stdin reaches the remote command', async () => {
    const host = `ssh://root@${addr}`;
    expect((await cli('-H', host, 'run', '-d', '--name', 'ssh-in', '--network', 'none', 'busybox', 'sleep', '300')).exitCode).toBe(0);
    const fed = await execa(BIN, ['-H', host, 'exec', '-i', 'ssh-in', 'sh', '-c', 'cat; echo done; exit 6'], { input: 'one\ntwo\n', reject: false, timeout: 60_000, env: { ...process.env, ...env() } });
    expect([fed.exitCode, fed.stdout]).toEqual([6, 'one\ntwo\ndone']);
    expect((await cli('-H', host, 'rm', '-f', 'ssh-in')).exitCode).toBe(0);
  }, 60_000);

  it('a dropped connection in the middle of exec -it or logs -f: the client ends naming the host; the container keeps running', async () => {
    const host = `ssh://root@${addr}`;
    expect((await cli('-H', host, 'run', '-d', '--name', 'ssh-drop', '--network', 'none', 'busybox', 'sh', '-c', 'echo first; sleep 300')).exitCode).toBe(0);
    // The shared connection's master is the connection: killing it is the network going away.
    const killMaster = async () => {
      const socks = path.join(runtimeDir(), 'berth-ssh');
      for (const f of readdirSync(socks)) {
        const pid = await masterPid(path.join(socks, f));
        if (pid) process.kill(pid, 'SIGKILL');
      }
    };
    const e = inPty(['-H', host, 'exec', '-it', 'ssh-drop', 'sh', '-c', 'echo ready; sleep 300'], env());
    await e.until('ready');
    await killMaster();
    expect(await e.done).toBe(1);
    expect(e.text()).toContain(`the connection to ${host} broke off`);

    // Without sharing, the ssh process of the stream is the connection.
    const follow = execa(BIN, ['-H', host, 'logs', '-f', 'ssh-drop'], { reject: false, timeout: 60_000, env: { ...process.env, ...env(), BERTH_SSH_OPTS: `${sshOpts} -o ControlMaster=no` } });
    let out = '';
    follow.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    for (let i = 0; i < 600 && !out.includes('first'); i++) await new Promise((r) => setTimeout(r, 50));
    for (const pid of descendantsNamed(follow.pid!, 'ssh')) process.kill(pid, 'SIGKILL');
    const res = await follow;
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain(`from ${host} broke off`);

    const events = execa(BIN, ['-H', host, 'events'], { reject: false, timeout: 60_000, env: { ...process.env, ...env() } });
    let seen = '';
    events.stdout!.on('data', (d: Buffer) => { seen += d.toString(); });
    // Something to see, so that the stream is known to be open before ssh is killed.
    for (let i = 0; i < 100 && !seen.includes('ssh-drop'); i++) {
      await t.engine.containers.kill('ssh-drop', 'SIGWINCH').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    await killMaster();
    const ev = await events;
    expect(ev.exitCode).toBe(1);
    expect(ev.stderr).toContain(`the event stream from ${host} broke off`);
    expect((await t.engine.containers.inspect('ssh-drop')).State.Running).toBe(true);
    expect((await cli('-H', host, 'rm', '-f', 'ssh-drop')).exitCode).toBe(0);
  }, 90_000);
});

describe('data through -H ssh:// (issue 19, part 2)', () => {
  it('cp both ways, build with its context sent, save and load, pull refused by the remote\'s own registry access', async () => {
    const host = `ssh://root@${addr}`;
    const work = path.join(dir, 'work');
    await mkdir(path.join(work, 'ctx'), { recursive: true });
    await writeFile(path.join(work, 'ctx', 'f.txt'), 'over ssh\n');
    await writeFile(path.join(work, 'ctx', 'Dockerfile'), 'FROM busybox\nARG W=x\nCOPY f.txt /f.txt\nRUN echo "$W" > /w\n');
    const built = await cli('-H', host, 'build', '-t', 'sshbuild:1', '--build-arg', 'W=arg', path.join(work, 'ctx'));
    expect(built.exitCode, built.stderr).toBe(0);
    expect(built.stdout).toMatch(/^Successfully tagged sshbuild:1$/m);
    expect((await cli('-H', host, 'run', '-d', '--name', 'ssh-cp', '--network', 'none', 'sshbuild:1', 'sleep', '300')).exitCode).toBe(0);
    expect((await cli('-H', host, 'exec', 'ssh-cp', 'cat', '/f.txt', '/w')).stdout).toBe('over ssh\narg');
    expect((await cli('-H', host, 'cp', path.join(work, 'ctx', 'f.txt'), 'ssh-cp:/tmp/in.txt')).exitCode).toBe(0);
    expect((await cli('-H', host, 'cp', 'ssh-cp:/tmp/in.txt', path.join(work, 'out.txt'))).exitCode).toBe(0);
    expect(await readFile(path.join(work, 'out.txt'), 'utf8')).toBe('over ssh\n');
    expect((await cli('-H', host, 'save', '-o', path.join(work, 'img.tar'), 'sshbuild:1')).exitCode).toBe(0);
    expect((await cli('-H', host, 'rm', '-f', 'ssh-cp')).exitCode).toBe(0);
    expect((await cli('-H', host, 'rmi', 'sshbuild:1')).exitCode).toBe(0);
    const loaded = await cli('-H', host, 'load', '-i', path.join(work, 'img.tar'));
    expect([loaded.exitCode, loaded.stdout]).toEqual([0, 'Loaded image: sshbuild:1']);
    expect((await cli('-H', host, 'rmi', 'sshbuild:1')).exitCode).toBe(0);
    // The pull is the remote's: the namespace host has no route to this machine's 127.0.0.1, and says so.
    const pulled = await cli('-H', host, 'pull', '127.0.0.1:9/none/such:1');
    expect(pulled.exitCode).toBe(125);
    expect(pulled.stderr).toContain('127.0.0.1:9');
  }, 120_000);
});

describe('one shared ssh connection per host (OpenSSH multiplexing, issue 19 part 2)', () => {
  it('two commands share one master; it exits after ControlPersist, and at once with context rm', async () => {
    const host = `ssh://root@${addr}`;
    const rt = path.join(dir, 'rt2');
    await mkdir(rt, { mode: 0o700 });
    // A ControlPersist of the user's own (BERTH_SSH_OPTS come first: ssh keeps the first value).
    const short = remoteCli({ BERTH_SSH_OPTS: `${sshOpts} -o ControlPersist=2`, XDG_CONFIG_HOME: dir, XDG_RUNTIME_DIR: rt });
    expect((await short('-H', host, 'ps')).exitCode).toBe(0);
    const socks = path.join(rt, 'berth-ssh');
    expect((await stat(socks)).mode & 0o777).toBe(0o700);
    const [name] = readdirSync(socks);
    const sock = path.join(socks, name!);
    const master = await masterPid(sock);
    expect(master).toBeGreaterThan(0);
    expect((await short('-H', host, 'ps')).exitCode).toBe(0);
    expect(readdirSync(socks)).toEqual([name]);
    expect(await masterPid(sock)).toBe(master);
    // Idle for ControlPersist: the master goes, and its socket with it.
    for (let i = 0; i < 200 && (existsSync(sock) || alive(master!)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(sock)).toBe(false);
    expect(alive(master!)).toBe(false);

    // The default ControlPersist outlives the command; context rm ends the master at once.
    const plain = remoteCli({ BERTH_SSH_OPTS: sshOpts, XDG_CONFIG_HOME: dir, XDG_RUNTIME_DIR: rt });
    expect((await plain('context', 'create', 'muxed', '--host', host)).exitCode).toBe(0);
    expect((await plain('--context', 'muxed', 'ps')).exitCode).toBe(0);
    const second = await masterPid(sock);
    expect(second).toBeGreaterThan(0);
    expect((await plain('context', 'rm', 'muxed')).exitCode).toBe(0);
    expect(existsSync(sock)).toBe(false);
    for (let i = 0; i < 50 && alive(second!); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(second!)).toBe(false);
    // The user's own choice is left alone: no master with ControlMaster=no.
    const none = remoteCli({ BERTH_SSH_OPTS: `${sshOpts} -o ControlMaster=no`, XDG_CONFIG_HOME: dir, XDG_RUNTIME_DIR: rt });
    expect((await none('-H', host, 'ps')).exitCode).toBe(0);
    expect(readdirSync(socks)).toEqual([]);
  }, 90_000);
});

describe('bad input over ssh', () => {
  it('an unknown host key is refused by ssh, and said so', async () => {
    const res = await remoteCli({ BERTH_SSH_OPTS: `-F /dev/null -i ${dir}/id -o UserKnownHostsFile=${dir}/empty_known_hosts -o GlobalKnownHostsFile=/dev/null`, XDG_CONFIG_HOME: dir })('-H', `ssh://root@${addr}`, 'ps');
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain(`the host key of ${addr} is not one your known_hosts file trusts`);
  }, 30_000);

  it('a host without berth: ssh exits 127, and the message says how to install it', async () => {
    const res = await cli('-H', `ssh://root@${addr}:2222`, 'ps');
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain(`${addr} has no berth command (ssh exited 127`);
    expect(res.stderr).toContain('install Berth on');
  }, 30_000);

  it('an unreachable host: a time-out naming the host, no hang', async () => {
    // The namespace drops its answers to us: the connection is never made.
    await ip('-n', NS, 'route', 'add', 'blackhole', `${addr.replace(/\.2$/, '.1')}/32`);
    try {
      const res = await remoteCli({ BERTH_SSH_OPTS: `${sshOpts} -o ConnectTimeout=2`, XDG_CONFIG_HOME: dir })('-H', `ssh://root@${addr}`, 'ps');
      expect(res.exitCode).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`(no answer from|cannot reach) ${addr.replace(/\./g, '\\.')}`));
    } finally {
      await ip('-n', NS, 'route', 'del', 'blackhole', `${addr.replace(/\.2$/, '.1')}/32`);
    }
  }, 30_000);
});

describe('the typed API over ssh', () => {
  it('new Engine({ host: "ssh://..." }) runs a container and streams its logs', async () => {
    const saved = process.env.BERTH_SSH_OPTS;
    const savedRt = process.env.XDG_RUNTIME_DIR;
    process.env.BERTH_SSH_OPTS = sshOpts;
    process.env.XDG_RUNTIME_DIR = runtimeDir();
    const remote = new Engine({ host: `ssh://root@${addr}` }) as unknown as RemoteEngineApi;
    try {
      const { id } = await remote.containers.run({ image: 'busybox', command: ['sh', '-c', 'echo a; sleep 0.3; echo b; exit 7'], network: { networks: ['none'] } }, { detach: true });
      const lines: string[] = [];
      for await (const e of remote.containers.logs(id, { follow: true })) lines.push(e.line);
      expect(lines).toEqual(['a', 'b']);
      expect(await remote.containers.wait(id)).toBe(7);
      await remote.containers.remove(id);
      expect(await remote.containers.list({ all: true })).toEqual([]);
    } finally {
      remote.close();
      if (saved === undefined) delete process.env.BERTH_SSH_OPTS;
      else process.env.BERTH_SSH_OPTS = saved;
      if (savedRt === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = savedRt;
    }
  }, 60_000);
});
