/**
 * A throwaway non-root user for rootless tests (issue 18): made with useradd (a system user, so useradd
 * adds no subordinate ids of its own), given /etc/subuid and /etc/subgid lines on request, and removed with
 * everything it left: its processes (by pid), its home, its runtime folder and exactly the lines added.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeSubidStart, parseSubidFile } from '../../src/userns/index.js';

const BERTH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/berth.js');
const FILES = ['/etc/subuid', '/etc/subgid'] as const;

export interface Result { stdout: string; stderr: string; code: number }

export function sh(file: string, args: readonly string[], timeout = 120_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ stdout, stderr, code });
    });
  });
}

export interface RootlessUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** the first subordinate uid/gid, once added */
  subStart?: number;
  addSubIds(): void;
  /** `berth ARGS` as the user, with a clean environment */
  berth(...args: string[]): Promise<Result>;
  /** the same with BERTH_FAILPOINT set */
  berthKilledAt(failpoint: string, ...args: string[]): Promise<Result>;
  /** any command as the user */
  as(file: string, ...args: string[]): Promise<Result>;
  pids(): Promise<number[]>;
  /** its processes that have not exited (zombies left out) */
  live(): Promise<number[]>;
  remove(): Promise<void>;
}

export async function createRootlessUser(opts: { homeMode?: number } = {}): Promise<RootlessUser> {
  const name = `berthrl${randomBytes(4).toString('hex')}`;
  const home = mkdtempSync(`/tmp/${name}-home-`);
  const made = await sh('useradd', ['-r', '-M', '-d', home, '-s', '/bin/sh', name]);
  if (made.code !== 0) {
    rmSync(home, { recursive: true, force: true });
    throw new Error(`useradd ${name}: ${made.stderr}`);
  }
  const uid = Number((await sh('id', ['-u', name])).stdout.trim());
  const gid = Number((await sh('id', ['-g', name])).stdout.trim());
  chownSync(home, uid, gid);
  chmodSync(home, opts.homeMode ?? 0o700);
  const added = new Map<string, string>();
  const env = [`HOME=${home}`, 'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `USER=${name}`, `LOGNAME=${name}`];
  const as = (file: string, ...args: string[]) => sh('runuser', ['-u', name, '--', 'env', '-i', ...env, file, ...args]);
  const user: RootlessUser = {
    name, uid, gid, home,
    addSubIds() {
      const texts = FILES.map((f) => readFileSync(f, 'utf8'));
      // A random step past what is taken: two test files adding at once rarely pick the same range.
      const start = Math.max(...texts.map((t, i) => freeSubidStart(parseSubidFile(t, FILES[i]!)))) + 65536 * Math.floor(Math.random() * 64);
      for (const f of FILES) {
        copyFileSync(f, `${f}.berth-test-${name}.bak`);
        const line = `${name}:${start}:65536`;
        const text = readFileSync(f, 'utf8');
        if (!text.split('\n').includes(line)) writeFileSync(f, line + '\n', { flag: 'a' });
        added.set(f, line);
      }
      user.subStart = start;
    },
    berth: (...args) => as(process.execPath, BERTH, ...args),
    berthKilledAt: (failpoint, ...args) => as('/usr/bin/env', `BERTH_FAILPOINT=${failpoint}`, process.execPath, BERTH, ...args),
    as,
    async pids() {
      const r = await sh('pgrep', ['-u', String(uid)]);
      return r.stdout.split('\n').filter(Boolean).map(Number);
    },
    async live() {
      return (await user.pids()).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
        } catch {
          return false;
        }
      });
    },
    async remove() {
      // Its processes by pid (the pause process, conmon, slirp4netns, containers' own), then the user.
      for (let round = 0; round < 5; round++) {
        const pids = await user.pids();
        if (!pids.length) break;
        for (const pid of pids) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await sh('userdel', ['-r', name]);
      rmSync(home, { recursive: true, force: true });
      rmSync(`/tmp/berth-run-${uid}`, { recursive: true, force: true });
      for (const [f, line] of added) {
        const lines = readFileSync(f, 'utf8').split('\n');
        if (lines.includes(line)) writeFileSync(f, lines.filter((l) => l !== line).join('\n'));
        rmSync(`${f}.berth-test-${name}.bak`, { force: true });
      }
    },
  };
  return user;
}

/** slirp4netns needs /dev/net/tun open to every user (udev's 0666); this host may have it 0600. */
export function openTun(): () => void {
  const mode = statSync('/dev/net/tun').mode & 0o777;
  if (mode !== 0o666) chmodSync('/dev/net/tun', 0o666);
  return () => { if (mode !== 0o666) chmodSync('/dev/net/tun', mode); };
}

/** `fn` again every 200 ms until it stops throwing (a server starting, an exit hook ending), at most `tries` times. */
export async function until<T>(fn: () => Promise<T>, tries = 50): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
