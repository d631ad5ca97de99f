/**
 * Container exits as conmon records them: it writes `<exits>/<id>` (the exit status as decimal text,
 * 128+N after signal N) once the container has exited and its output is drained into the log.
 */
import { promises as fsp, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { RuntimeError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import { readdirIfExists } from '../util/fs.js';
import { delay, exitFile, monitorAlive, monitorDir } from './monitor.js';

export interface ExitStatus {
  exitCode: number;
  /** RFC 3339 with nanoseconds: the exit file's mtime */
  finishedAt: string;
  oomKilled?: boolean;
}

const POLL_MS = 250;

export async function readExitStatus(layout: StoreLayout, id: string): Promise<ExitStatus | undefined> {
  let text: string;
  let mtimeNs: bigint;
  try {
    const file = exitFile(layout, id);
    [text, mtimeNs] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file, { bigint: true }).then((s) => s.mtimeNs)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // g_file_set_contents writes a temp file and renames it, so a present file is complete.
  const exitCode = Number(text.trim());
  if (!Number.isInteger(exitCode)) return undefined;
  const oomKilled = await fsp.access(path.join(monitorDir(layout, id), 'oom')).then(() => true, () => false);
  return { exitCode: exitCode < 0 ? 255 : exitCode, finishedAt: formatNs(mtimeNs), ...(oomKilled ? { oomKilled } : {}) };
}

/** Ids with an exit file: one readdir, for listings that would otherwise try each container's file. */
export async function exitedIds(layout: StoreLayout): Promise<Set<string>> {
  return new Set((await readdirIfExists(layout.exits)).filter((n) => /^[0-9a-f]{64}$/.test(n)));
}

export async function clearExit(layout: StoreLayout, id: string): Promise<void> {
  await fsp.rm(exitFile(layout, id), { force: true });
  await fsp.rm(monitorDir(layout, id), { recursive: true, force: true });
}

/**
 * Resolves with the exit code once the exit file appears. fs.watch on the exits folder wakes it early;
 * a poll covers filesystems without inotify and events lost between the check and the watch. Rejects
 * with the signal's reason when aborted, and with a RuntimeError when the monitor died without
 * writing the file (killed with SIGKILL: nobody will ever record this exit).
 */
export async function waitForExit(layout: StoreLayout, id: string, signal?: AbortSignal): Promise<number> {
  await fsp.mkdir(layout.exits, { recursive: true, mode: 0o700 });
  let wake: () => void = () => {};
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(layout.exits, (_event, name) => {
      if (name === null || name === id) wake();
    });
    watcher.on('error', () => {});
  } catch {
    watcher = undefined;
  }
  const onAbort = () => wake();
  signal?.addEventListener('abort', onAbort);
  try {
    let monitorGoneSince: number | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const st = await readExitStatus(layout, id);
      if (st) return st.exitCode;
      if (!(await monitorAlive(layout, id))) {
        monitorGoneSince ??= Date.now();
        // A grace period: conmon writes the file just before it exits, and create may still be starting it.
        if (Date.now() - monitorGoneSince > 2000 && !(await readExitStatus(layout, id))) {
          throw new RuntimeError(`the monitor of container ${id} is gone and recorded no exit status`,
            'the container exit code is unknown; remove the container or start it again');
        }
      } else {
        monitorGoneSince = undefined;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        void delay(POLL_MS).then(resolve);
      });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    watcher?.close();
  }
}

/** 1700000000123456789n → "2023-11-14T22:13:20.123456789Z" */
export function formatNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}
