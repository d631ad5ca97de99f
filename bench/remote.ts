/**
 * Issue 19: what a remote host costs. `berth run --rm busybox true` on this machine, and the same command
 * through `-H ssh://` to a "remote host": a network namespace of the bench with Debian's sshd on an address
 * of its own, keys made here (as test/remote/ssh.test.ts), the remote's berth this build on a root of its
 * own. Through ssh twice: a new ssh connection for every connection Berth makes (ControlMaster=no), and
 * OpenSSH's multiplexing (one master kept open, each connection a session on it), interleaved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, BERTH_IMAGE, BerthRoot } from './berth.js';
import { type Benchmark, deferCleanup, measureInterleaved, Report, scratch, sh } from './lib.js';
import { stopByPid } from './peers.js';

const NS = `berth-b-ssh${process.pid}`;
/** 10.254.253.0/30: the tests take 10.254.0-255 by slot from their own counter; the bench keeps to one. */
const SUBNET = '10.254.253';

/** sshd in the namespace, in the foreground, logging to stderr: resolves once it listens. */
function startSshd(config: string): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=/run/netns/${NS}`, '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => reject(new Error(`sshd did not start: ${said}`)), 10_000);
    child.stderr!.on('data', (c: Buffer) => {
      said += c.toString();
      if (said.includes('Server listening on')) { clearTimeout(timer); resolve(child); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sshd exited ${code}: ${said}`)); });
  });
}

/** The pid listening on a unix socket (the remote's shared dial-stdio service), if any. */
async function listenerOf(file: string): Promise<number | undefined> {
  const out = (await sh('ss', ['-xlpnH'])).stdout;
  const m = /pid=(\d+)/.exec(out.split('\n').find((l) => l.split(/\s+/).includes(file)) ?? '');
  return m ? Number(m[1]) : undefined;
}

export const remote: Benchmark = {
  name: 'remote',
  title: 'issue 19: run --rm busybox true locally vs through -H ssh:// to a netns host, a new ssh connection per call vs a kept-open master',
  defaultRuns: 10,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const local = await BerthRoot.create('remote-local');
    const far = await BerthRoot.create('remote-far');
    const work = await scratch('remote');
    const addr = `${SUBNET}.2`;
    const hostVeth = 'btsbenchh';
    let sshd: ChildProcess | undefined;
    const ip = (...args: string[]) => sh('ip', args, { timeout: 10_000 });
    const teardown = deferCleanup(async () => {
      if (sshd?.pid) await stopByPid(sshd.pid);
      const shared = await listenerOf(path.join(far.runroot, 'dial-stdio.sock')).catch(() => undefined);
      if (shared) await stopByPid(shared);
      // Masters of the multiplexed side: asked to exit by their socket (ssh -O exit), never by name.
      for (const sock of [`${work.dir}/cm-%C`, `${work.dir}/berth-ssh/%C`]) await sh('ssh', [...sshBase, '-o', `ControlPath=${sock}`, '-O', 'exit', addr]).catch(() => undefined);
      await ip('netns', 'del', NS).catch(() => undefined);
      await ip('link', 'del', hostVeth).catch(() => undefined);
    });
    let sshBase: string[] = [];
    try {
      await Promise.all([local.ensureImage(), far.ensureImage()]);
      await ip('netns', 'add', NS);
      await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'btsbenchn');
      await ip('link', 'set', 'btsbenchn', 'netns', NS);
      await ip('addr', 'add', `${SUBNET}.1/30`, 'dev', hostVeth);
      await ip('link', 'set', hostVeth, 'up');
      await ip('-n', NS, 'addr', 'add', `${addr}/30`, 'dev', 'btsbenchn');
      await ip('-n', NS, 'link', 'set', 'btsbenchn', 'up');
      await ip('-n', NS, 'link', 'set', 'lo', 'up');
      for (const key of ['host_key', 'id']) await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-bench', '-f', path.join(work.dir, key)]);
      await writeFile(path.join(work.dir, 'authorized_keys'), await readFile(path.join(work.dir, 'id.pub')), { mode: 0o600 });
      const hostPub = (await readFile(path.join(work.dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
      await writeFile(path.join(work.dir, 'known_hosts'), `${addr} ${hostPub}\n`);
      await mkdir(path.join(work.dir, 'bin'));
      await symlink(BERTH_BIN, path.join(work.dir, 'bin', 'berth'));
      await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
      await writeFile(path.join(work.dir, 'sshd_config'), [
        `ListenAddress ${addr}`, 'Port 22', `HostKey ${work.dir}/host_key`, `PidFile ${work.dir}/sshd.pid`,
        `AuthorizedKeysFile ${work.dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PermitRootLogin prohibit-password',
        'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
        `SetEnv PATH=${work.dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin BERTH_ROOT=${far.root} BERTH_RUNROOT=${far.runroot}`, '',
      ].join('\n'));
      sshd = await startSshd(path.join(work.dir, 'sshd_config'));
      sshBase = ['-F', '/dev/null', '-i', `${work.dir}/id`, '-o', `UserKnownHostsFile=${work.dir}/known_hosts`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-l', 'root'];

      const host = `ssh://root@${addr}`;
      const args = ['run', '--rm', BERTH_IMAGE, 'true'];
      // XDG_RUNTIME_DIR: Berth's own shared connections keep their sockets in the bench's folder.
      const viaSsh = (extra: string) => async () => {
        await sh(process.execPath, [BERTH_BIN, '-H', host, ...args], { timeout: 60_000, env: { BERTH_SSH_OPTS: `${sshBase.join(' ')} ${extra}`, XDG_RUNTIME_DIR: work.dir } });
      };
      await measureInterleaved(report, [
        { label: 'local: run --rm busybox true', role: 'reference', run: async () => { await local.cli(args); } },
        { label: '-H ssh://, a new ssh connection per call', role: 'berth', run: viaSsh('-o ControlMaster=no -o ControlPath=none') },
        { label: '-H ssh://, one kept-open ssh master', role: 'berth', run: viaSsh(`-o ControlMaster=auto -o ControlPath=${work.dir}/cm-%C -o ControlPersist=60`) },
        { label: '-H ssh://, Berth\'s default (its own shared master)', role: 'berth', run: viaSsh('') },
        { label: 'ssh HOST true (one new connection, for context)', role: 'info', run: async () => { await sh('ssh', [...sshBase, '-o', 'ControlMaster=no', '-o', 'ControlPath=none', addr, 'true']); } },
        { label: 'ssh HOST true on the kept-open master', role: 'info', run: async () => { await sh('ssh', [...sshBase, '-o', `ControlPath=${work.dir}/cm-%C`, addr, 'true']); } },
      ], { runs: ctx.runs, warmup: 2 });

      const base = () => report.median('local: run --rm busybox true');
      const fresh = () => report.median('-H ssh://, a new ssh connection per call');
      const kept = () => report.median('-H ssh://, one kept-open ssh master');
      for (const [label, side] of [['new connections', fresh], ['kept-open master', kept]] as const) {
        try {
          report.add({ label: `remote cost beyond local, ${label} (difference of medians)`, role: 'info', unit: 'ms', samples: [side() - base()] });
        } catch { /* a side that failed says so in its own row */ }
      }
      report.target('kept-open master faster than new connections', () => kept() / fresh(), '<=', 1, 'x');
      report.target('Berth\'s default shares one master (as fast as the kept-open side, within 20%)', () => report.median('-H ssh://, Berth\'s default (its own shared master)') / kept(), '<=', 1.2, 'x');
      report.note('both sides on the default bridge, each on its own root (the remote\'s in its namespace); the remote\'s dial-stdio processes share one service (system service -t 10), so after the first call no side pays for its start');
    } finally {
      await teardown();
      await local.cleanup();
      await far.cleanup();
      await work.remove();
    }
    return report;
  },
};
