import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadStateError, BerthError, RuntimeError } from '../errors.js';
import { withLock } from '../util/lock.js';
import { processTag, tagAlive } from '../util/liveness.js';
import { run } from '../util/exec.js';
import { writeFileAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import { rootlessDirs, ensurePrivateDir } from './dirs.js';
import { overlayInUsernsSupported } from './detect.js';
import { hasCommand } from '../storage/hosttools.js';
import { freeSubidStart, parseSubidFile, rangesOf, SUBGID_FILE, SUBUID_FILE, type SubidRange } from '../userns/index.js';

/** The user has no /etc/subuid or /etc/subgid range: a setup the administrator does once. */
export class MissingSubIdsError extends BerthError {
  readonly code = 'ROOTLESS_SETUP';
  constructor(readonly user: string, missing: readonly { file: string; line: string }[]) {
    super(`rootless Berth needs subordinate ids for user ${user}: ${missing.map((m) => m.file).join(' and ')} ${missing.length > 1 ? 'have' : 'has'} no range for it`,
      `as root, add ${missing.map((m) => `the line "${m.line}" to ${m.file}`).join(' and ')} (or run scripts/setup.sh --rootless-user ${user})`);
  }
}

const PAUSE_FILE = 'pause.pid';

/** The ranges of the user, or MissingSubIdsError naming the exact lines to add. */
export function subIdRanges(user: { name: string; uid: number }, files: { subuid: string; subgid: string }): { uids: SubidRange[]; gids: SubidRange[] } {
  const all = { uid: parseSubidFile(files.subuid, SUBUID_FILE), gid: parseSubidFile(files.subgid, SUBGID_FILE) };
  const uids = rangesOf(all.uid, user);
  const gids = rangesOf(all.gid, user);
  const missing: { file: string; line: string }[] = [];
  if (!uids.length) missing.push({ file: SUBUID_FILE, line: `${user.name}:${freeSubidStart(all.uid)}:65536` });
  if (!gids.length) missing.push({ file: SUBGID_FILE, line: `${user.name}:${freeSubidStart(all.gid)}:65536` });
  if (missing.length) throw new MissingSubIdsError(user.name, missing);
  return { uids, gids };
}

/** newuidmap's arguments: container 0 is the user, 1.. the ranges in order. */
export function mapArgs(pid: number, own: number, ranges: readonly Pick<SubidRange, 'start' | 'count'>[]): string[] {
  const args = [String(pid), '0', String(own), '1'];
  let next = 1;
  for (const r of ranges) {
    args.push(String(next), String(r.start), String(r.count));
    next += r.count;
  }
  return args;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Podman's design: a pause process (`catatonit -P`) holds a user namespace mapped by newuidmap/newgidmap
 * and a mount namespace; every rootless command re-runs itself inside them (`nsenter --user --mount
 * --preserve-credentials`), so the overlay mounts, conmon and containers one command makes are there for
 * the next, and outlive it. Returns the pid of a live pause process, starting one when there is none.
 */
export async function ensurePause(runroot: string): Promise<number> {
  const file = path.join(runroot, PAUSE_FILE);
  const alive = () => {
    const tag = readText(file).trim();
    return tagAlive(tag) ? Number(tag.split(' ')[0]) : undefined;
  };
  // The pid is recorded before the maps are written (a kill in between must not leak the process): one
  // whose namespace has no map yet is only usable once mapped.
  const mapped = (pid: number | undefined) => (pid && readText(`/proc/${pid}/uid_map`).trim() ? pid : undefined);
  const pid = mapped(alive());
  if (pid) return pid;
  return withLock(path.join(runroot, 'pause.lock'), async () => {
    const found = alive();
    if (mapped(found)) return found!;
    // Left unmapped by a command killed while starting it (we hold the lock: nobody is mapping it now).
    if (found) process.kill(found, 'SIGKILL');
    return startPause(file);
  });
}

async function startPause(file: string): Promise<number> {
  const user = os.userInfo();
  const { uids, gids } = subIdRanges({ name: user.username, uid: user.uid }, { subuid: readText(SUBUID_FILE), subgid: readText(SUBGID_FILE) });
  const child = spawn('unshare', ['--user', '--mount', '--', 'catatonit', '-P'], { detached: true, stdio: 'ignore' });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new RuntimeError(`cannot start the rootless pause process: ${err.message}`, 'install util-linux and catatonit', { cause: err })));
    child.once('spawn', () => resolve(child.pid!));
  });
  child.unref();
  try {
    await writeFileAtomic(file, processTag(pid));
    await untilUnshared(pid);
    failpoint('rootless.pause.before-map');
    await run('newuidmap', mapArgs(pid, user.uid, uids), { timeout: 10_000 });
    await run('newgidmap', mapArgs(pid, user.gid, gids), { timeout: 10_000 });
  } catch (err) {
    process.kill(pid, 'SIGKILL');
    await fsp.rm(file, { force: true });
    if (err instanceof RuntimeError) {
      throw new RuntimeError(`cannot map the rootless user namespace: ${err.message}`, 'check /etc/subuid and /etc/subgid for this user and that newuidmap and newgidmap (package uidmap) are setuid root', { cause: err });
    }
    throw err;
  }
  return pid;
}

/** unshare(1) unshares and then execs: the maps may only be written once its namespace is a new one. */
async function untilUnshared(pid: number): Promise<void> {
  const own = readlinkSync('/proc/self/ns/user');
  for (let i = 0; i < 500; i++) {
    let ns: string | undefined;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      throw new RuntimeError('the rootless pause process exited before its namespace was mapped', 'run "unshare --user --mount true" to see why user namespaces are refused');
    }
    if (ns !== own) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new RuntimeError('the rootless pause process did not make its user namespace in 5 s', 'run "unshare --user --mount true" to see why');
}

/**
 * Runs this same command again inside the pause process's namespaces, with the same stdio, and resolves
 * with its exit code. Signals that would end us are passed on, so Ctrl-C reaches the command that acts.
 */
export async function runInNamespace(argv: readonly string[]): Promise<number> {
  // Older kernels cannot mount overlayfs in a user namespace: fuse-overlayfs stands in (storage/driver.ts).
  if (!overlayInUsernsSupported(os.release()) && !hasCommand('fuse-overlayfs')) {
    throw new BadStateError(`rootless Berth on Linux before 5.11 (this kernel is ${os.release()}) needs fuse-overlayfs, which is not installed: the kernel cannot mount overlayfs in a user namespace`,
      'install the fuse-overlayfs package (apt-get install fuse-overlayfs), or run Berth as root on this host');
  }
  const uid = process.geteuid!();
  const dirs = rootlessDirs(process.env, uid, uid);
  ensurePrivateDir(dirs.runroot, uid);
  const pid = await ensurePause(dirs.runroot);
  const script = process.argv[1]!;
  const child = spawn('nsenter', ['--user', '--mount', '--preserve-credentials', '-t', String(pid), '--', process.execPath, ...process.execArgv, script, ...argv], { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new RuntimeError(`cannot enter the rootless namespace: ${err.message}`, 'install util-linux (nsenter)', { cause: err })));
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
    });
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

/**
 * The API's guard: a non-root process outside the namespace can neither mount nor chown, so an Engine made
 * there would fail deep in some layer. The CLI never gets here (it re-runs itself inside first).
 */
export function assertInNamespace(): void {
  if ((process.geteuid?.() ?? 0) === 0) return;
  throw new BadStateError('rootless Berth must run inside its user namespace: this process is a non-root user outside it',
    'use the berth command, which enters it itself; run a program of the API under "nsenter --user --mount --preserve-credentials -t PID" with the pid in the runroot\'s pause.pid (any berth command starts it)');
}

/** Ends the pause process (`system reset`): the namespaces go with it once nothing else is in them. */
export async function stopPause(runroot: string): Promise<void> {
  const file = path.join(runroot, PAUSE_FILE);
  const tag = readText(file).trim();
  if (tagAlive(tag)) {
    process.kill(Number(tag.split(' ')[0]), 'SIGKILL');
    // "Nothing left running" holds when reset returns: SIGKILL is delivered, not yet done, when kill() returns.
    for (let waited = 0; tagAlive(tag) && waited < 5_000; waited += 20) await sleep(20);
  }
  await fsp.rm(file, { force: true });
}
