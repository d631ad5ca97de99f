/**
 * Throwaway users and subordinate id ranges for the user-namespace benchmark: a system user (useradd adds
 * no ranges of its own for one) with a private home, `/etc/subuid` and `/etc/subgid` lines added for the
 * run, and a removal that takes exactly what was added (its processes, home, runtime folder, the lines).
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CommandOptions, CommandResult } from '../src/util/exec.js';
import { freeSubidStart, parseSubidFile, rangesOf } from '../src/userns/index.js';
import { deferCleanup, sh, sleep } from './lib.js';

const SUBID_FILES = ['/etc/subuid', '/etc/subgid'] as const;
/** Ranges the bench adds start above everything a real host hands out (useradd's default ends at 600100000). */
const BENCH_SUBID_FLOOR = 1_500_000_000;

export interface SubIdRange {
  readonly start: number;
  readonly size: number;
}

/**
 * `name`'s range in both files: the one there, or a new one added for the run and taken out again by the
 * harness's clean-up (only that line: the files may change meanwhile).
 */
export async function ensureSubIds(name: string, size = 65536 * 64): Promise<SubIdRange> {
  const texts = await Promise.all(SUBID_FILES.map((f) => readFile(f, 'utf8').catch(() => '')));
  const parsed = texts.map((t, i) => parseSubidFile(t, SUBID_FILES[i]!));
  const have = parsed.map((ranges) => rangesOf(ranges, { name }).map((r) => ({ start: r.start, size: r.count }))[0]);
  if (have[0] && have[1]) return have[0];
  const range = { start: freeSubidStart(parsed.flat(), size, BENCH_SUBID_FLOOR), size };
  const line = `${name}:${range.start}:${range.size}`;
  const added: string[] = [];
  const undo = deferCleanup(async () => {
    for (const f of added) {
      const lines = (await readFile(f, 'utf8')).split('\n');
      if (lines.includes(line)) await writeFile(f, lines.filter((l) => l !== line).join('\n'));
    }
  });
  try {
    for (const [i, f] of SUBID_FILES.entries()) {
      if (have[i]) continue;
      const text = texts[i] ?? '';
      await writeFile(f, `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`);
      added.push(f);
    }
  } catch (err) {
    await undo();
    throw err;
  }
  return have[0] ?? range;
}

export interface BenchUser {
  readonly name: string;
  readonly uid: number;
  readonly home: string;
  /** `file ARGS` as the user, with a clean environment (HOME, PATH, USER only) */
  run(file: string, args: readonly string[], opts?: CommandOptions): Promise<CommandResult>;
  remove(): Promise<void>;
}

/** A new user with its own subordinate ranges; removed by `remove()` or by the harness's clean-up. */
export async function makeUser(tag: string): Promise<BenchUser> {
  const name = `berthb${tag}${randomBytes(3).toString('hex')}`.slice(0, 31);
  const home = await mkdtemp(path.join(tmpdir(), `${name}-home-`));
  await sh('useradd', ['-r', '-M', '-d', home, '-s', '/bin/sh', name], { timeout: 15_000 });
  let uid = -1;
  const remove = deferCleanup(async () => {
    // Its processes (pause process, monitors, network helpers, containers), then the user and its files.
    for (let round = 0; round < 10 && uid >= 0; round++) {
      const { stdout } = await sh('pgrep', ['-u', String(uid)], { timeout: 5_000 }).catch(() => ({ stdout: '' }));
      const pids = stdout.split('\n').filter(Boolean).map(Number);
      if (!pids.length) break;
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await sleep(100);
    }
    await sh('userdel', [name], { timeout: 15_000 }).catch(() => undefined);
    for (const f of SUBID_FILES) {
      const text = await readFile(f, 'utf8').catch(() => '');
      const lines = text.split('\n');
      const kept = lines.filter((l) => !l.startsWith(`${name}:`));
      if (kept.length !== lines.length) await writeFile(f, kept.join('\n'));
    }
    await rm(home, { recursive: true, force: true });
    if (uid >= 0) await rm(`/tmp/berth-run-${uid}`, { recursive: true, force: true });
  });
  try {
    uid = Number((await sh('id', ['-u', name], { timeout: 5_000 })).stdout.trim());
    const gid = Number((await sh('id', ['-g', name], { timeout: 5_000 })).stdout.trim());
    await chown(home, uid, gid);
    await chmod(home, 0o700);
    await ensureSubIds(name, 65536);
  } catch (err) {
    await remove();
    throw err;
  }
  const env = [`HOME=${home}`, 'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `USER=${name}`, `LOGNAME=${name}`];
  return {
    name, uid, home, remove,
    run: (file, args, opts = {}) => sh('runuser', ['-u', name, '--', 'env', '-i', ...env, file, ...args], { timeout: 120_000, ...opts }),
  };
}
