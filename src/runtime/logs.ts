import path from 'node:path';
/**
 * Reading conmon's k8s-file log: one record per line, `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`.
 * `P` records are pieces of a line the container has not finished (conmon splits at its buffer size and
 * when it must flush); they join the records that follow up to the closing `F`.
 *
 * Follow mode keeps reading after the end of the file until `signal` aborts, a record passes `until`,
 * or `stopWhen()` says the writer is done (the container exited: conmon drains all output into the log
 * before it writes the exit file, so one last read after that sees everything).
 */
import { promises as fsp, watch, type FSWatcher } from 'node:fs';
import type { LogEntry, LogOptions } from '../types.js';
import { InvalidArgumentError } from '../errors.js';
import { delay } from './monitor.js';

export interface ReadLogOptions extends LogOptions {
  /** Follow mode ends after the next drain once this resolves true. Checked each time the reader is idle. */
  stopWhen?: () => Promise<boolean>;
  /** Byte offset to start at; 'end' skips what is already there (attach to a running container). */
  from?: number | 'end';
}

interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: string;
}

export function parseLogRecord(line: string): LogRecord | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  // An empty F record ("... stdout F") has no trailing space.
  const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  if (tag !== 'F' && tag !== 'P') return undefined;
  return { time: line.slice(0, a), stream, partial: tag === 'P', text: c < 0 ? '' : line.slice(c + 1) };
}

/**
 * Joins P records with what follows on the same stream. Pending pieces are kept until flushed, so
 * that a caller at the end of the file can emit them as a partial entry (a prompt without a newline).
 */
export class LineJoiner {
  private pending = new Map<'stdout' | 'stderr', { time: string; text: string }>();

  push(rec: LogRecord): LogEntry | undefined {
    const prev = this.pending.get(rec.stream);
    const text = (prev?.text ?? '') + rec.text;
    const time = prev?.time ?? rec.time;
    if (rec.partial) {
      this.pending.set(rec.stream, { time, text });
      return undefined;
    }
    this.pending.delete(rec.stream);
    return { time, stream: rec.stream, line: text, partial: false };
  }

  /** The unfinished pieces, as partial entries; the joiner forgets them. */
  flush(): LogEntry[] {
    const out = [...this.pending].map(([stream, p]) => ({ time: p.time, stream, line: p.text, partial: true }));
    this.pending.clear();
    return out;
  }
}

/** Docker's --since/--until forms: RFC 3339, unix seconds with optional fraction, or a duration ago. */
export function parseLogTime(value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const rel = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (rel) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[rel[2] as 'ms' | 's' | 'm' | 'h'];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidArgumentError('since/until', `"${value}" is not a time`, 'use RFC 3339 (2024-01-02T15:04:05Z), unix seconds, or a duration like 10m');
  return t;
}

export async function* readLog(logPath: string, opts: ReadLogOptions = {}): AsyncGenerator<LogEntry> {
  const since = opts.since ? parseLogTime(opts.since) : undefined;
  const until = opts.until ? parseLogTime(opts.until) : undefined;
  const inRange = (e: LogEntry) => {
    const t = Date.parse(e.time);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  const pastUntil = (e: LogEntry) => until !== undefined && Date.parse(e.time) > until;
  // `logs` (no starting point) shows the rotated files too; an attach starts in the current one.
  const reader = new LogFileReader(logPath, opts.from === 'end' ? await fileSize(logPath) : opts.from ?? 0, opts.from === undefined ? await rotatedFiles(logPath) : []);
  try {
    yield* readRecords(reader, opts, inRange, pastUntil);
  } finally {
    await reader.close();
  }
}

async function* readRecords(reader: LogFileReader, opts: ReadLogOptions, inRange: (e: LogEntry) => boolean, pastUntil: (e: LogEntry) => boolean): AsyncGenerator<LogEntry> {
  const joiner = new LineJoiner();

  // What is already in the file: filtered, then cut to the last `tail` lines.
  const first: LogEntry[] = [];
  for (const rec of await reader.readAvailable()) {
    const e = joiner.push(rec);
    if (e && inRange(e)) first.push(e);
  }
  // An unfinished last line counts as a line for `tail`; its continuation, if any, comes as its own entry.
  for (const e of joiner.flush()) if (inRange(e)) first.push(e);
  const tail = opts.tail === undefined || opts.tail === 'all' ? undefined : Math.max(0, opts.tail);
  for (const e of tail === undefined ? first : tail === 0 ? [] : first.slice(-tail)) yield e;
  if (first.some(pastUntil)) return;
  if (!opts.follow) return;

  const waiter = new ChangeWaiter(reader.path);
  try {
    let draining = false;
    for (;;) {
      for (const rec of await reader.readAvailable()) {
        const e = joiner.push(rec);
        if (!e) continue;
        if (pastUntil(e)) return;
        if (inRange(e)) yield e;
      }
      // At the end of what was written: unfinished lines are shown now rather than held back.
      for (const e of joiner.flush()) if (inRange(e)) yield e;
      if (draining || opts.signal?.aborted) return;
      if (opts.stopWhen && (await opts.stopWhen())) {
        draining = true;
        continue;
      }
      await waiter.next(opts.signal);
    }
  } finally {
    waiter.close();
  }
}

export async function fileSize(file: string): Promise<number> {
  try {
    return (await fsp.stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** The rotated files of a log (runtime/logrotate.ts: `<log>.1` is the newest), oldest first. */
async function rotatedFiles(logPath: string): Promise<string[]> {
  const name = path.basename(logPath);
  const n = (await fsp.readdir(path.dirname(logPath)).catch(() => [] as string[]))
    .flatMap((f) => (f.startsWith(name + '.') && /^\d+$/.test(f.slice(name.length + 1)) ? [Number(f.slice(name.length + 1))] : []));
  return n.sort((a, b) => b - a).map((i) => `${logPath}.${i}`);
}

/**
 * The files rotated after the one with inode `ino` (now `<log>.k`): `<log>.k-1` ... `<log>.1`, oldest
 * first; none when that file is not among the rotated ones any more.
 */
async function rotatedSince(logPath: string, ino: number): Promise<string[]> {
  const older = await rotatedFiles(logPath);
  for (let i = 0; i < older.length; i++) {
    const st = await fsp.stat(older[i]!).catch(() => undefined);
    if (st?.ino === ino) return older.slice(i + 1);
  }
  return [];
}

/**
 * Reads complete lines from a growing file, remembering the offset and any incomplete last line. With
 * --log-opt max-size, the log is renamed to `<log>.1` and a new one made under its name: the reader keeps
 * the old file open, reads it to its end, then any file rotated since (a reader that was slow for more
 * than one rotation), then goes on with the new one from its start.
 */
class LogFileReader {
  private rest = Buffer.alloc(0);
  private fh: fsp.FileHandle | undefined;
  private ino = -1;
  /** `history`: rotated files read whole before the log itself, oldest first */
  constructor(private readonly file: string, private offset: number, private history: string[] = []) {}

  get path(): string {
    return this.file;
  }

  async readAvailable(): Promise<LogRecord[]> {
    const chunks: Buffer[] = [this.rest];
    for (const f of this.history.splice(0)) chunks.push(await readWhole(f));
    if (!this.fh && !(await this.open())) return this.records(chunks);
    await this.drain(chunks);
    const now = await fsp.stat(this.file).catch(() => undefined);
    if (now && now.ino !== this.ino) {
      await this.drain(chunks);
      const had = this.ino;
      await this.close();
      for (const f of await rotatedSince(this.file, had)) chunks.push(await readWhole(f));
      this.offset = 0;
      if (await this.open()) await this.drain(chunks);
    }
    return this.records(chunks);
  }

  private records(chunks: Buffer[]): LogRecord[] {
    const all = Buffer.concat(chunks);
    const end = all.lastIndexOf(0x0a);
    this.rest = end < 0 ? all : all.subarray(end + 1);
    if (end < 0) return [];
    const out: LogRecord[] = [];
    for (const line of all.subarray(0, end).toString('utf8').split('\n')) {
      const rec = parseLogRecord(line);
      if (rec) out.push(rec);
    }
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private async open(): Promise<boolean> {
    try {
      this.fh = await fsp.open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    this.ino = (await this.fh.stat()).ino;
    return true;
  }

  private async drain(chunks: Buffer[]): Promise<void> {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await this.fh!.read(buf, 0, buf.length, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    }
  }
}

/** Wakes on a change to the file (fs.watch) or after a poll interval, whichever is first. */
class ChangeWaiter {
  private watcher: FSWatcher | undefined;
  private wake: () => void = () => {};

  constructor(file: string, private readonly pollMs = 200) {
    try {
      // The folder, not the file: a file watch stays on the old inode when conmon replaces the log (max-size).
      const name = path.basename(file);
      this.watcher = watch(path.dirname(file), (_event, changed) => {
        if (changed === null || changed === name || changed === `${name}.tmp`) this.wake();
      });
      this.watcher.on('error', () => {});
    } catch {
      // The file may not exist yet; polling covers it.
    }
  }

  next(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.wake = done;
      signal?.addEventListener('abort', done);
      void delay(this.pollMs).then(done);
    });
  }

  close(): void {
    this.watcher?.close();
  }
}

/** A rotated file, whole; one that was rotated away meanwhile reads as empty. */
async function readWhole(file: string): Promise<Buffer> {
  return fsp.readFile(file).catch(() => Buffer.alloc(0));
}
