/**
 * ssh and scp for machines, through the system's OpenSSH client with the options every remote call uses
 * (src/remote/dial.ts: BERTH_SSH_OPTS, BatchMode, ConnectTimeout, the machine's key). ssh's own failures
 * (exit 255) become the typed RemoteError dial.ts gives; any other status is the remote command's.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import { BadStateError, RemoteError } from '../errors.js';
import { SSH_ENV, sshFailure, sshOptions } from '../remote/dial.js';
import { parseHost, type HostTarget } from '../remote/uri.js';
import type { MachineRecord } from './store.js';

export type SshTarget = Extract<HostTarget, { kind: 'ssh' }>;

/** How to reach a machine: its target and the environment dial.ts and ssh read (its key, remote berth, root). */
export interface MachineLink {
  readonly target: SshTarget;
  readonly env: NodeJS.ProcessEnv;
}

/** The settings a machine adds to the environment, as `machine env` prints them (undefined: unset). */
export function machineSshEnv(rec: Pick<MachineRecord, 'Ssh' | 'Remote'>): Record<string, string | undefined> {
  return { [SSH_ENV.identity]: rec.Ssh.KeyPath, [SSH_ENV.berth]: rec.Remote.Berth, [SSH_ENV.root]: rec.Remote.Root };
}

export function linkOf(rec: Pick<MachineRecord, 'Url' | 'Ssh' | 'Remote'>, env: NodeJS.ProcessEnv = process.env): MachineLink {
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [k, v] of Object.entries(machineSshEnv(rec))) if (v === undefined) delete merged[k]; else merged[k] = v;
  return { target: parseHost(rec.Url) as SshTarget, env: merged };
}

export interface RemoteResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `script` in the remote user's shell. Resolves with the remote status (anything but ssh's 255);
 * rejects with RemoteError when ssh could not log in or the time ran out.
 */
export async function remoteShell(link: MachineLink, script: string, opts: { input?: Readable; timeoutMs?: number } = {}): Promise<RemoteResult> {
  const { target } = link;
  const timeout = opts.timeoutMs ?? 120_000;
  const res = await execa('ssh', [...sshOptions(target, link.env), '--', target.host, script], {
    reject: false, timeout, env: link.env, extendEnv: false, stripFinalNewline: false,
    ...(opts.input ? { input: opts.input } : { stdin: 'ignore' }),
  });
  if (res.timedOut) {
    throw new RemoteError('timeout', target.uri, `no answer from ${target.host} in ${timeout / 1000}s (${script.split('\n')[0]!.slice(0, 60)}...)`, 'check that the host is up and reachable from here');
  }
  if (res.failed && res.exitCode === undefined) {
    throw new RemoteError('unreachable', target.uri, `cannot run ssh: ${res.shortMessage}`, 'install the OpenSSH client (apt-get install openssh-client)', { cause: res });
  }
  if (res.exitCode === 255) throw sshFailure(target.uri, target.host, 255, String(res.stderr));
  return { exitCode: res.exitCode ?? 1, stdout: String(res.stdout), stderr: String(res.stderr) };
}

/** `remoteShell` that must exit 0: otherwise a RemoteError naming `what` with the remote's last words. */
export async function remoteShellOk(link: MachineLink, what: string, script: string, opts: { input?: Readable; timeoutMs?: number } = {}): Promise<RemoteResult> {
  const res = await remoteShell(link, script, opts);
  if (res.exitCode !== 0) {
    const said = `${res.stderr}\n${res.stdout}`.trim().split('\n').filter(Boolean).slice(-6).join('\n');
    throw new BadStateError(`${what} failed on ${link.target.host} (exit ${res.exitCode}):\n${said}`, 'run "berth machine ssh NAME" to look at the host, fix what the lines above say, then try again');
  }
  return res;
}

export interface Stdio {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable;
  stderr: Writable;
}

/**
 * `ssh HOST [CMD...]` for `machine ssh`: a login shell with a terminal when there is no command and stdin is
 * one, the command's own status otherwise (ssh's 255 when ssh itself failed). Streams are passed through.
 */
export function interactiveSsh(link: MachineLink, command: readonly string[], io: Stdio): Promise<number> {
  const { target } = link;
  const tty = command.length === 0 && io.stdin.isTTY === true;
  const args = [...sshOptions(target, link.env), ...(tty ? ['-t'] : []), '--', target.host, ...command];
  const child = spawn('ssh', args, { env: link.env, stdio: [tty ? 'inherit' : 'pipe', 'pipe', 'pipe'] });
  if (!tty) {
    io.stdin.pipe(child.stdin!);
    child.stdin!.on('error', () => { /* the remote command closed its stdin: its status tells the rest */ });
  }
  child.stdout!.pipe(io.stdout, { end: false });
  child.stderr!.pipe(io.stderr, { end: false });
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new RemoteError('unreachable', target.uri, `cannot run ssh: ${err.message}`, 'install the OpenSSH client (apt-get install openssh-client)', { cause: err })));
    child.once('close', (code, signal) => {
      if (!tty) io.stdin.unpipe(child.stdin!);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
    });
  });
}

/** One side of `machine scp`: a local path, or a path on a machine. */
export type ScpEndpoint = { kind: 'local'; path: string } | { kind: 'machine'; link: MachineLink; name: string; path: string };

/**
 * scp between this host and a machine, or two machines (`-3`: through here, so neither needs the other's
 * key). Remote sides are scp:// URIs, which carry each machine's user and port; every machine's key is
 * offered. OpenSSH 9's scp speaks SFTP, so paths are taken literally, never expanded by a remote shell.
 */
export async function scp(from: ScpEndpoint, to: ScpEndpoint, opts: { recursive?: boolean; env: NodeJS.ProcessEnv }): Promise<void> {
  const machines = [from, to].filter((e): e is Extract<ScpEndpoint, { kind: 'machine' }> => e.kind === 'machine');
  const keys = [...new Set(machines.map((m) => m.link.env[SSH_ENV.identity]).filter((k): k is string => !!k))];
  const user = (opts.env.BERTH_SSH_OPTS ?? '').split(/\s+/).filter(Boolean);
  const where = (e: ScpEndpoint) => {
    if (e.kind === 'local') return e.path;
    const t = e.link.target;
    // A relative path is the remote user's home's, as with scp HOST:PATH.
    const p = e.path.startsWith('/') ? e.path : `~/${e.path}`;
    return `scp://${t.user ? `${t.user}@` : ''}${t.host.includes(':') ? `[${t.host}]` : t.host}${t.port ? `:${t.port}` : ''}/${p}`;
  };
  const args = [...user, '-q', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', ...keys.flatMap((k) => ['-i', k]),
    ...(opts.recursive ? ['-r'] : []), ...(machines.length === 2 ? ['-3'] : []), '--', where(from), where(to)];
  const res = await execa('scp', args, { reject: false, timeout: 600_000, env: opts.env, extendEnv: false, stdin: 'ignore' });
  if (res.exitCode === 0) return;
  const m = machines[0]!;
  const stderr = String(res.stderr);
  if (/Permission denied \(|Host key verification|timed out|Connection refused|No route|Could not resolve/.test(stderr)) {
    throw sshFailure(m.link.target.uri, m.link.target.host, 255, stderr);
  }
  throw new BadStateError(`scp ${where(from)} ${where(to)} failed (exit ${res.exitCode ?? res.signal}): ${stderr.trim().split('\n').slice(-3).join('; ')}`,
    opts.recursive ? 'check both paths' : 'check both paths (give -r to copy a folder)');
}
