/**
 * Issue 19, `berth machine`: a "remote host" (sshd in a network namespace of this test, sshhost.ts) is
 * provisioned with this worktree's built Berth, then driven through the machine's context and through
 * `eval $(berth machine env NAME)`. The namespace shares this machine's filesystem, so the install goes
 * under the test's folder with --install-prefix (the host's /usr/local/bin/berth and /usr/local/lib are
 * never touched), and the remote Berth gets a root of its own with --berth-root. Contexts and machine
 * records live in the test's XDG_CONFIG_HOME.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRunroot } from '../../src/paths.js';
import { unmountUnder } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import { cleanEnv, remoteCli } from '../remote/helpers.js';
import { makeSshHost, type SshHost } from './sshhost.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const linkOf = (p: string) => { try { return readlinkSync(p); } catch { return undefined; } };
const hostBerthBefore = linkOf('/usr/local/bin/berth');
const sshHome = () => (existsSync(path.join(homedir(), '.ssh')) ? readdirSync(path.join(homedir(), '.ssh')).sort() : undefined);
const sshHomeBefore = sshHome();

let h: SshHost;
let sshd: ChildProcess;
let config: string;
let prefix: string;
let root: string;
let env: Record<string, string>;
let cli: ReturnType<typeof remoteCli>;

beforeAll(async () => {
  h = await makeSshHost();
  config = path.join(h.dir, 'config');
  prefix = path.join(h.dir, 'prefix');
  root = path.join(h.dir, 'remote-root');
  sshd = await h.startSshd(22);
  env = { BERTH_SSH_OPTS: h.sshOpts, XDG_CONFIG_HOME: config };
  cli = remoteCli(env);
}, 60_000);

afterAll(async () => {
  if (!h) return;
  try {
    // The remote's containers, bridge and rules are in the namespace: its own berth removes them there.
    if (existsSync(root)) {
      const reset = await h.inNs([BIN, '--root', root, 'system', 'reset', '-f'], 60_000);
      expect(reset.exitCode, reset.stderr).toBe(0);
      expect(await findLeaks(root, defaultRunroot(root), { final: true })).toEqual([]);
    }
  } finally {
    unmountUnder(root);
    unmountUnder(defaultRunroot(root));
    await execa('rm', ['-rf', defaultRunroot(root)]);
    await h.remove();
    // Nothing of the test is left: sshd, the namespace, the keys, records; the host's berth link as it was.
    expect((await execa('ip', ['netns', 'list'])).stdout).not.toContain(h.ns);
    expect(existsSync(h.dir)).toBe(false);
    expect(linkOf('/usr/local/bin/berth')).toBe(hostBerthBefore);
    expect(sshHome()).toEqual(sshHomeBefore);
  }
}, 120_000);

const create = (name: string, ...extra: string[]) =>
  cli('machine', 'create', '--driver', 'generic', '--ssh-host', h.addr, '--ssh-key', h.key, '--install-prefix', prefix, '--berth-root', root, ...extra, name);

/** No record, no context, no install: what a failed create must leave. */
async function nothingLeft(): Promise<void> {
  expect((await cli('machine', 'ls', '-q')).stdout).toBe('');
  expect((await cli('context', 'ls', '-q')).stdout).toBe('default');
  expect(existsSync(path.join(prefix, 'lib', 'berth'))).toBe(false);
}

describe('machine create: bad input leaves nothing behind', () => {
  it('a driver other than generic is refused by name', async () => {
    const res = await cli('machine', 'create', '--driver', 'virtualbox', '--ssh-host', h.addr, 'vb');
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toContain('"virtualbox" is not a driver Berth has (it has: generic)');
    await nothingLeft();
  });

  it('a name a context already has', async () => {
    expect((await cli('context', 'create', 'taken', '--host', `ssh://root@${h.addr}`)).exitCode).toBe(0);
    const res = await create('taken');
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toContain('context taken already exists');
    expect((await cli('context', 'rm', 'taken')).exitCode).toBe(0);
    const bad = await create('bad/name');
    expect(bad.stderr).toContain('is not a valid context name');
    await nothingLeft();
  });

  it('an unreachable host: a time-out naming the host, no hang', async () => {
    // The namespace drops its answers to us: the connection is never made.
    await h.inNs(['ip', 'route', 'add', 'blackhole', `${h.peer}/32`]);
    try {
      const res = await remoteCli({ ...env, BERTH_SSH_OPTS: `${h.sshOpts} -o ConnectTimeout=2` })('machine', 'create', '--ssh-host', h.addr, '--ssh-key', h.key, '--install-prefix', prefix, 'far');
      expect(res.exitCode).not.toBe(0);
      expect(res.stderr).toContain(`no answer from ${h.addr}`);
      expect(res.stderr).toContain(`Nothing was left on ${h.addr}`);
    } finally {
      await h.inNs(['ip', 'route', 'del', 'blackhole', `${h.peer}/32`]);
    }
    await nothingLeft();
  }, 30_000);

  it('a refused key, and an unknown host key', async () => {
    const refused = await cli('machine', 'create', '--ssh-host', h.addr, '--ssh-key', h.otherKey, '--install-prefix', prefix, 'nokey');
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain(`${h.addr} refused every key offered`);
    const unknown = await remoteCli({ ...env, BERTH_SSH_OPTS: h.sshOptsNoHostKey })('machine', 'create', '--ssh-host', h.addr, '--ssh-key', h.key, '--install-prefix', prefix, 'nohostkey');
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toContain(`the host key of ${h.addr} is not one your known_hosts file trusts`);
    await nothingLeft();
  }, 30_000);

  it('a host that is not Debian 12 (its sshd sees a fake /etc/os-release) is refused naming what it runs', async () => {
    const fake = path.join(h.dir, 'os-release');
    await writeFile(fake, 'PRETTY_NAME="Fake Linux 7"\nNAME="Fake Linux"\nID=fake\nVERSION_ID="7"\n');
    const other = await h.startSshd(2200, { binds: [[fake, '/etc/os-release']] });
    // The user accepts the unknown host key up front: ssh adds it to (the test's) known_hosts.
    const accepted = path.join(h.dir, 'accepted_known_hosts');
    await writeFile(accepted, '');
    try {
      const res = await remoteCli({ ...env, BERTH_SSH_OPTS: h.sshOptsNoHostKey.replace(path.join(h.dir, 'empty_known_hosts'), accepted) })(
        'machine', 'create', '--ssh-host', h.addr, '--ssh-port', '2200', '--ssh-key', h.key, '--install-prefix', prefix, '--ssh-accept-host-key', 'fake');
      expect(res.exitCode).not.toBe(0);
      expect(res.stderr).toContain(`${h.addr} runs Fake Linux 7 (ID=fake, VERSION_ID=7), not Debian 12`);
      expect(await readFile(accepted, 'utf8')).toContain(`[${h.addr}]:2200 ssh-ed25519 `);
    } finally {
      await h.stopSshd(other);
    }
    // The bind mount was the other sshd's alone.
    expect(readFileSync('/etc/os-release', 'utf8')).toContain('ID=debian');
    await nothingLeft();
  }, 30_000);
});

describe('machine create: failures after the copy undo it', () => {
  it('a package missing on a host that cannot reach a package source: setup.sh names it and how to install it; create removes its copy', async () => {
    // That sshd's sessions see a dpkg database without socat, and apt state of their own (bind mounts in a
    // mount namespace of its own): the real apt-get runs and fails, as the namespace has no route out.
    const fake = path.join(h.dir, 'apt');
    await mkdir(path.join(fake, 'dpkg', 'updates'), { recursive: true });
    await mkdir(path.join(fake, 'lists', 'partial'), { recursive: true });
    await mkdir(path.join(fake, 'cache', 'archives', 'partial'), { recursive: true });
    const status = (await readFile('/var/lib/dpkg/status', 'utf8')).split(/\n\n+/).filter((st) => !st.startsWith('Package: socat\n'));
    await writeFile(path.join(fake, 'dpkg', 'status'), status.join('\n\n') + '\n');
    await writeFile(path.join(fake, 'dpkg', 'available'), '');
    const other = await h.startSshd(2222, { binds: [[path.join(fake, 'dpkg'), '/var/lib/dpkg'], [path.join(fake, 'lists'), '/var/lib/apt/lists'], [path.join(fake, 'cache'), '/var/cache/apt']] });
    try {
      const res = await cli('machine', 'create', '--ssh-host', h.addr, '--ssh-port', '2222', '--ssh-key', h.key, '--install-prefix', prefix, '--berth-root', root, 'noapt');
      expect(res.exitCode).not.toBe(0);
      expect(res.stderr).toContain('could not install the missing packages socat');
      expect(res.stderr).toContain('install them with: apt-get update && apt-get install socat');
      expect(res.stderr).toContain(`Removed what create had put on ${h.addr}`);
    } finally {
      await h.stopSshd(other);
    }
    expect(lstatSync(path.join(prefix, 'bin', 'berth'), { throwIfNoEntry: false })).toBeUndefined();
    await nothingLeft();
  }, 120_000);

  it('a create killed after the copy leaves a record that ls shows as Error and rm --purge removes with the copy', async () => {
    const killed = await remoteCli({ ...env, BERTH_FAILPOINT: 'machine.create.after-copy' })('machine', 'create', '--ssh-host', h.addr, '--ssh-key', h.key, '--install-prefix', prefix, '--berth-root', root, 'crashed');
    expect(killed.signal, `exit ${killed.exitCode}: ${killed.stderr}`).toBe('SIGKILL');
    expect(existsSync(path.join(prefix, 'lib', 'berth'))).toBe(true);
    expect((await cli('machine', 'ls', '--format', '{{.Name}} {{.State}} {{.Error}}')).stdout).toBe('crashed Error create did not finish: remove it with "berth machine rm"');
    expect((await cli('machine', 'env', 'crashed')).stderr).toContain('machine crashed was not fully created');
    const rm = await cli('machine', 'rm', '-y', '--purge', 'crashed');
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect(lstatSync(path.join(prefix, 'bin', 'berth'), { throwIfNoEntry: false })).toBeUndefined();
    await nothingLeft();
  }, 120_000);
});

describe('a machine, from create to rm', () => {
  it('create installs the built tree under the prefix, runs setup.sh, and registers a context', async () => {
    const res = await create('m1');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe('m1');
    expect(res.stderr).toContain('setup: built tree');
    expect(readlinkSync(path.join(prefix, 'bin', 'berth'))).toBe(path.join(prefix, 'lib', 'berth', 'bin', 'berth.js'));
    // The bundle carries its packages: nothing of node_modules travels, and the remote still runs containers.
    expect(existsSync(path.join(prefix, 'lib', 'berth', 'node_modules'))).toBe(false);
    const ctx = JSON.parse((await cli('context', 'inspect', 'm1')).stdout)[0];
    expect(ctx.Endpoints.docker.Host).toBe(`ssh://root@${h.addr}:22`);
    expect(ctx.Metadata.BerthSsh).toEqual({ Identity: h.key, Berth: path.join(prefix, 'bin', 'berth'), Root: root });
    const recFile = path.join(config, 'berth', 'machines', 'm1.json');
    expect(statSync(recFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(recFile, 'utf8')).Incomplete).toBeUndefined();
    const again = await create('m1');
    expect(again.exitCode).not.toBe(0);
    expect(again.stderr).toContain('machine m1 already exists');
  }, 300_000);

  it('run --rm, run -d -p (answered inside the namespace), logs and ps through the context', async () => {
    const run = await cli('--context', 'm1', 'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo on-m1; exit 4');
    expect([run.exitCode, run.stdout]).toEqual([4, 'on-m1']);
    const d = await cli('--context', 'm1', 'run', '-d', '--name', 'web', '-p', '8080:80', 'busybox', 'sh', '-c',
      'mkdir /www && echo served-by-m1 > /www/index.html && echo web-up && exec httpd -f -p 80 -h /www');
    expect(d.exitCode, d.stderr).toBe(0);
    const got = await h.inNs(['timeout', '10', 'busybox', 'wget', '-q', '-O-', `http://${h.addr}:8080/`]);
    expect(got.stdout.trim(), got.stderr).toBe('served-by-m1');
    expect((await cli('--context', 'm1', 'logs', 'web')).stdout).toBe('web-up');
    expect((await cli('--context', 'm1', 'ps', '--format', '{{.Names}} {{.Ports}}')).stdout).toMatch(/^web .*8080->80\/tcp/);
    // The container is in the machine's root, not in any store of this side.
    expect(existsSync(path.join(root, 'containers', d.stdout.trim()))).toBe(true);
  }, 120_000);

  it('eval $(berth machine env m1) in bash points berth at the machine, and --unset undoes it', async () => {
    const shell = (script: string) => execa('bash', ['-c', script], { reject: false, timeout: 60_000, env: cleanEnv({ ...env, PATH: `${path.dirname(BIN)}:${process.env.PATH}` }), extendEnv: false });
    const envOut = (await cli('machine', 'env', 'm1')).stdout;
    expect(envOut).toContain(`export BERTH_HOST="ssh://root@${h.addr}:22";`);
    expect(envOut).toContain('# eval $(berth machine env m1)');
    const res = await shell(`eval $(berth.js machine env m1) && echo "$BERTH_MACHINE_NAME" && berth.js ps --format '{{.Names}}' && berth.js machine ls --format '{{.Name}} {{.Active}}' && eval $(berth.js machine env --unset) && echo "unset:\${BERTH_HOST:-none}" && berth.js --root ${h.dir}/local-root ps -q`);
    expect(res.stdout.split('\n'), res.stderr).toEqual(['m1', 'web', 'm1 *', 'unset:none']);
    expect((await cli('machine', 'ls', '--format', '{{.Name}} {{.Active}}')).stdout).toBe('m1 -');
    await execa('rm', ['-rf', `${h.dir}/local-root`]);
  }, 120_000);

  it('machine ls: Running with its version; ssh runs a command and passes its exit code', async () => {
    const ls = await cli('machine', 'ls');
    expect(ls.stdout.split('\n')[0]).toMatch(/^NAME\s+ACTIVE\s+DRIVER\s+STATE\s+URL\s+BERTH\s+ERRORS$/);
    expect(ls.stdout.split('\n')[1]).toMatch(new RegExp(`^m1\\s+-\\s+generic\\s+Running\\s+ssh://root@${h.addr.replace(/\./g, '\\.')}:22\\s+v\\d+\\.\\d+\\.\\d+$`));
    expect((await cli('machine', 'ls', '-q')).stdout).toBe('m1');
    const hi = await cli('machine', 'ssh', 'm1', 'echo', 'hi');
    expect([hi.exitCode, hi.stdout]).toEqual([0, 'hi']);
    expect((await cli('machine', 'ssh', 'm1', 'exit 3')).exitCode).toBe(3);
    // No command: a login shell on a terminal (script(1) gives this side one), its exit code passed through.
    const tty = await execa('script', ['-q', '-e', '-c', `${BIN} machine ssh m1`, '/dev/null'], {
      reject: false, timeout: 30_000, env: cleanEnv(env), extendEnv: false, input: 'tty -s && echo "on-a-tty-$((6*7))"; exit 7\n',
    });
    expect(tty.exitCode, String(tty.stderr)).toBe(7);
    expect(String(tty.stdout)).toContain('on-a-tty-42');
    const missing = await cli('machine', 'ssh', 'nosuch', 'true');
    expect(missing.stderr).toContain('no such machine: nosuch');
  }, 60_000);

  it('machine scp: to the machine, back, between two paths of machines, and -r', async () => {
    const local = path.join(h.dir, 'scp');
    await mkdir(path.join(local, 'tree', 'sub'), { recursive: true });
    await writeFile(path.join(local, 'a.txt'), 'alpha\n');
    await writeFile(path.join(local, 'tree', 'sub', 'b.txt'), 'beta\n');
    const remote = path.join(h.dir, 'on-m1');
    expect((await cli('machine', 'ssh', 'm1', 'mkdir', remote)).exitCode).toBe(0);
    const up = await cli('machine', 'scp', path.join(local, 'a.txt'), `m1:${remote}/a.txt`);
    expect(up.exitCode, up.stderr).toBe(0);
    expect((await cli('machine', 'ssh', 'm1', 'cat', `${remote}/a.txt`)).stdout).toBe('alpha');
    const both = await cli('machine', 'scp', `m1:${remote}/a.txt`, `m1:${remote}/c.txt`);
    expect(both.exitCode, both.stderr).toBe(0);
    const down = await cli('machine', 'scp', `m1:${remote}/c.txt`, path.join(local, 'c.txt'));
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await readFile(path.join(local, 'c.txt'), 'utf8')).toBe('alpha\n');
    const tree = await cli('machine', 'scp', '-r', path.join(local, 'tree'), `m1:${remote}/tree`);
    expect(tree.exitCode, tree.stderr).toBe(0);
    expect((await cli('machine', 'ssh', 'm1', 'cat', `${remote}/tree/sub/b.txt`)).stdout).toBe('beta');
    const noDir = await cli('machine', 'scp', path.join(local, 'tree'), `m1:${remote}/tree2`);
    expect(noDir.exitCode).not.toBe(0);
    expect(noDir.stderr).toContain('give -r to copy a folder');
  }, 120_000);

  it('upgrade copies this Berth again and re-runs the set-up; the container keeps running', async () => {
    const before = JSON.parse((await cli('machine', 'inspect', 'm1')).stdout)[0].Installed.At;
    const res = await cli('machine', 'upgrade', 'm1');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toContain('m1: Berth');
    const after = JSON.parse((await cli('machine', 'inspect', 'm1')).stdout)[0];
    expect(after.Installed.At > before).toBe(true);
    expect(existsSync(path.join(prefix, 'lib', 'berth.new')) || existsSync(path.join(prefix, 'lib', 'berth.old'))).toBe(false);
    expect((await cli('--context', 'm1', 'ps', '--format', '{{.Names}} {{.State}}')).stdout).toBe('web running');
  }, 300_000);

  it('machine ls says Stopped when sshd is gone, and Running once it is back', async () => {
    await h.stopSshd(sshd);
    const ls = await cli('machine', 'ls', '--format', '{{.Name}} {{.State}} {{.BerthVersion}}');
    expect(ls.stdout).toBe('m1 Stopped Unknown');
    // --purge cannot reach the host: nothing is removed without -f.
    const rm = await cli('machine', 'rm', '-y', '--purge', 'm1');
    expect(rm.exitCode).toBe(1);
    expect(rm.stderr).toContain(`cannot reach ${h.addr}`);
    expect((await cli('machine', 'ls', '-q')).stdout).toBe('m1');
    sshd = await h.startSshd(22);
    expect((await cli('machine', 'ls', '--format', '{{.State}}')).stdout).toBe('Running');
  }, 60_000);

  it('rm --purge removes the record, the context and the install (the root stays for its reset)', async () => {
    expect((await cli('--context', 'm1', 'rm', '-f', 'web')).exitCode).toBe(0);
    const res = await cli('machine', 'rm', '-y', '--purge', 'm1');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toContain(`Removed ${path.join(prefix, 'lib', 'berth')}`);
    expect(existsSync(path.join(prefix, 'lib', 'berth'))).toBe(false);
    expect(lstatSync(path.join(prefix, 'bin', 'berth'), { throwIfNoEntry: false })).toBeUndefined();
    await nothingLeft();
    expect(existsSync(path.join(config, 'berth', 'machines', 'm1.json'))).toBe(false);
  }, 60_000);
});
