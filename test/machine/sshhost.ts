/**
 * A "remote host" for the machine tests (test/remote/ssh.test.ts builds the same inline): a network
 * namespace of this test with Debian's sshd on an address of its own (a veth pair, a /30 of 10.253.X.0),
 * a host key and client keys made here, and a known_hosts file written here. ssh options come through
 * BERTH_SSH_OPTS, so the user's ~/.ssh is never read or written. The namespace shares this machine's
 * filesystem; only the network is its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { claimSlot } from '../helpers/engine.js';

/**
 * Kills what still runs in the netns: sshd's session processes outlive its listener (a client's shared
 * master keeps its session open), and they would keep the namespace and a stale sshd behind.
 */
export async function killNetnsProcesses(ns: string): Promise<void> {
  const pids = (await execa('ip', ['netns', 'pids', ns], { reject: false, timeout: 10_000 })).stdout.split('\n').filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone meanwhile */ }
  }
}

/** Resolves once sshd run with `-D -e` says it listens; rejects if it exits first or takes over 10 s. */
export function sshdListening(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => reject(new Error(`sshd did not start: ${said}`)), 10_000);
    child.stderr!.on('data', (c: Buffer) => {
      said += c.toString();
      if (said.includes('Server listening on')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sshd exited ${code}: ${said}`)); });
  });
}

export interface SshHost {
  ns: string;
  /** the namespace's address, where sshd listens */
  addr: string;
  /** this side's address on the veth */
  peer: string;
  /** the test's folder: keys, configs, known_hosts */
  dir: string;
  /** a key the host accepts; `otherKey`: one it does not */
  key: string;
  otherKey: string;
  /** options for BERTH_SSH_OPTS: the test's known_hosts, no user config */
  sshOpts: string;
  /** options that trust no host key */
  sshOptsNoHostKey: string;
  /**
   * Starts sshd on `port`. `binds` ([source, target] pairs) are bind mounts in a mount namespace of that
   * sshd's own (private propagation): its sessions see them, nothing else on this machine does.
   */
  startSshd(port: number, opts?: { binds?: ReadonlyArray<readonly [string, string]> }): Promise<ChildProcess>;
  stopSshd(child: ChildProcess): Promise<void>;
  /** runs a command inside the namespace */
  inNs(cmd: string[], timeoutMs?: number): Promise<{ exitCode?: number; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

const ip = (...args: string[]) => execa('ip', args, { timeout: 10_000 });

function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function makeSshHost(): Promise<SshHost> {
  const claim = claimSlot(3600 + (process.pid % 200));
  const x = claim.slot & 255;
  const ns = `berth-t-mach${process.pid}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-machine-'));
  const addr = `10.253.${x}.2`;
  const peer = `10.253.${x}.1`;
  const hostVeth = `btm${x}h`;
  const sshds: ChildProcess[] = [];
  const remove = async () => {
    for (const s of sshds) s.kill('SIGTERM');
    await Promise.all(sshds.map(stopped));
    await killNetnsProcesses(ns);
    await ip('netns', 'del', ns).catch(() => undefined);
    await ip('link', 'del', hostVeth).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    claim.release();
  };
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', `btm${x}n`);
    await ip('link', 'set', `btm${x}n`, 'netns', ns);
    await ip('addr', 'add', `${peer}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await ip('-n', ns, 'addr', 'add', `${addr}/30`, 'dev', `btm${x}n`);
    await ip('-n', ns, 'link', 'set', `btm${x}n`, 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    for (const key of ['host_key', 'id', 'other_id']) await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'berth-test', '-f', path.join(dir, key)], { timeout: 10_000 });
    await writeFile(path.join(dir, 'authorized_keys'), await readFile(path.join(dir, 'id.pub')), { mode: 0o600 });
    const hostPub = (await readFile(path.join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(path.join(dir, 'known_hosts'), [22, 2200, 2222].map((p) => `${p === 22 ? addr : `[${addr}]:${p}`} ${hostPub}\n`).join(''));
    await writeFile(path.join(dir, 'empty_known_hosts'), '');
    // sshd's privilege separation folder (Debian's unit makes it; there is no systemd here).
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  } catch (err) {
    await remove();
    throw err;
  }
  const common = `-F /dev/null -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`;
  return {
    ns, addr, peer, dir, key: path.join(dir, 'id'), otherKey: path.join(dir, 'other_id'),
    sshOpts: `${common} -o UserKnownHostsFile=${dir}/known_hosts`,
    sshOptsNoHostKey: `${common} -o UserKnownHostsFile=${dir}/empty_known_hosts`,
    async startSshd(port, opts = {}) {
      const config = path.join(dir, `sshd_${port}`);
      await writeFile(config, [
        `ListenAddress ${addr}`, `Port ${port}`, `HostKey ${dir}/host_key`, `PidFile ${dir}/sshd-${port}.pid`,
        `AuthorizedKeysFile ${dir}/authorized_keys`, 'StrictModes no', 'UsePAM no', 'PermitRootLogin prohibit-password',
        'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'Subsystem sftp /usr/lib/openssh/sftp-server',
        // No berth on the remote user's PATH: the machine's context must name the berth it installed.
        'SetEnv PATH=/usr/sbin:/usr/bin:/sbin:/bin', '',
      ].join('\n'));
      const sshd = ['/usr/sbin/sshd', '-D', '-e', '-f', config];
      const binds = opts.binds ?? [];
      const mounts = binds.map((_, i) => `mount --bind "$${2 * i + 1}" "$${2 * i + 2}"`).join(' && ');
      const argv = binds.length
        ? ['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', `${mounts} && shift ${2 * binds.length} && exec "$@"`, 'sh', ...binds.flat(), ...sshd]
        : sshd;
      const child = spawn('nsenter', [`--net=/run/netns/${ns}`, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
      sshds.push(child);
      await sshdListening(child);
      return child;
    },
    async stopSshd(child) {
      child.kill('SIGTERM');
      await stopped(child);
    },
    inNs: async (cmd, timeoutMs = 30_000) => {
      const r = await execa('nsenter', [`--net=/run/netns/${ns}`, ...cmd], { reject: false, timeout: timeoutMs });
      return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    remove,
  };
}
