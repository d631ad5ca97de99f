import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
/**
 * Shared pieces of the benchmarks: timing, statistics, the report table, scratch folders and the
 * clean-up registry. Speed and memory targets live here and in the benchmarks, never in tests.
 */
import { access, constants, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run, type CommandOptions, type CommandResult } from '../src/util/exec.js';

// ---------------------------------------------------------------- the benchmark contract

export interface Benchmark {
  readonly name: string;
  /** One line: what is measured, against what. */
  readonly title: string;
  /** Iterations when --runs is not given; small enough that the whole bench stays under 10 minutes. */
  readonly defaultRuns: number;
  run(ctx: BenchContext): Promise<Report>;
}

export interface BenchContext {
  /** --runs, or the benchmark's default. */
  readonly runs: number;
  /** --containers: N of the many-container parts (network: N on one network; scale: 2N in the root, rm -f of N, N on one network). */
  readonly containers: number;
  /**
   * Podman and docker: measured by default when installed, none with --no-peers (an unavailable peer
   * throws its reason when used).
   */
  peers(): Promise<readonly PeerCli[]>;
  /** Progress, on stderr, so that stdout holds only the tables. */
  log(message: string): void;
}

/** A peer engine (podman, docker) driven through its own CLI, on an image made from the same rootfs. */
export interface PeerCli {
  readonly name: 'podman' | 'docker';
  /** The busybox image imported into the peer's store. */
  readonly image: string;
  /**
   * Docker's `rm -f` (kill at once). Podman's own `rm -f` first waits its stop timeout for PID 1, which
   * ignores SIGTERM here, so podman gets `-t 0` to do the same work as docker and Berth.
   */
  readonly forceRemove: readonly string[];
  cli(args: readonly string[], opts?: CommandOptions): Promise<CommandResult>;
  /** The command line `cli(args)` runs, for a wrapper such as `timedWithCpu`. */
  argv(args: readonly string[]): Argv;
}

/** A command as its file, arguments and extra environment. */
export interface Argv {
  file: string;
  args: readonly string[];
  env?: Record<string, string>;
}

// ---------------------------------------------------------------- statistics and timing

export interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles: with few runs an interpolated p90 would invent a figure nobody measured. */
export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) throw new Error('no samples');
  const rank = (q: number) => sorted[Math.max(0, Math.ceil(q * n) - 1)] as number;
  const mid = n % 2 ? (sorted[(n - 1) / 2] as number) : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  return { n, median: mid, p90: rank(0.9), min: sorted[0] as number, max: sorted[n - 1] as number };
}

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Milliseconds `fn` took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One line for a table cell. A failed command shows as `berth ARGS (exit N): <the line of its stderr
 * that names the error>`, not the stack trace's last lines.
 */
export function errorText(err: unknown): string {
  const failed = err as { message?: unknown; command?: unknown; stderr?: unknown; commandExitCode?: unknown };
  let line: string;
  if (typeof failed?.command === 'string' && typeof failed.stderr === 'string') {
    const lines = failed.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
    const best = lines.find((l) => /^(\w*Error\b|error:)|Cannot |cannot |No such|not found|denied/.test(l)) ?? lines.at(-1) ?? 'no output';
    const status = String(failed.message).includes(' timed out') ? 'timed out' : `exit ${String(failed.commandExitCode ?? '?')}`;
    const cmd = failed.command.replace(/^\S*node \S*bin\/berth\.js --root \S+/, 'berth');
    line = `${cmd.length > 70 ? `${cmd.slice(0, 67)}...` : cmd} (${status}): ${best}`;
  } else {
    const msg = err instanceof Error ? err.message : String(err);
    line = msg.split('\n').find((l) => l.trim()) ?? 'unknown error';
  }
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

// ---------------------------------------------------------------- the report

/** `us` (microseconds) for round trips, which `ms` with one decimal would round to 0.1. */
export type Unit = 'us' | 'ms' | 's' | 'MB/s' | 'MB' | 'count' | 'x';
/** Ratios are taken against the report's reference row of the same unit. */
export type Role = 'reference' | 'berth' | 'peer' | 'info';
export type Verdict = 'PASS' | 'FAIL' | 'n/a';

export interface Row {
  label: string;
  role: Role;
  unit: Unit;
  samples: number[];
  /** Set when the side failed: the row prints 'n/a: <error>' and every target using it is n/a. */
  error?: string;
  /** The row its ratio is taken against; default the first reference row of the same unit, null for none. */
  vs?: string | null;
}

export interface TargetResult {
  description: string;
  actual: string;
  verdict: Verdict;
}

export class Report {
  readonly rows: Row[] = [];
  readonly targets: TargetResult[] = [];
  readonly notes: string[] = [];

  constructor(readonly name: string, readonly title: string) {}

  add(row: Row): Row {
    this.rows.push(row);
    return row;
  }

  /**
   * A figure quoted from MACHINE-NOTES.md, for context only: labelled `[quoted]`, given no ratio, and
   * never used by a target (`peerMedian` reads only rows measured in this run).
   */
  quote(label: string, unit: Unit, value: number): void {
    this.add({ label: `${label} [quoted]`, role: 'info', unit, samples: [value], vs: null });
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** A statistic of a row that produced samples; throws (making a target n/a) otherwise. */
  figure(label: string, which: Exclude<keyof Stats, 'n'> = 'median'): number {
    const row = this.rows.find((r) => r.label === label);
    if (!row) throw new Error(`no row "${label}"`);
    if (row.error || row.samples.length === 0) throw new Error(`"${label}" ${row.error ? 'failed' : 'has no samples'}`);
    return stats(row.samples)[which];
  }

  median(label: string): number {
    return this.figure(label);
  }

  /** A peer's median as measured in this run; a target using a peer that was not measured is n/a. */
  peerMedian(label: string): number {
    if (!this.rows.some((r) => r.label === label)) throw new Error(`"${label}" not measured in this run (peers skipped or not installed)`);
    return this.median(label);
  }

  /**
   * The fastest (lowest median) of the peer rows measured in this run, named by `label(peer)`; throws
   * when none was. Its name is returned too, for the target's note.
   */
  fastestPeer(labels: readonly string[]): { label: string; median: number; measured: number } {
    const measured = labels.flatMap((label) => {
      try {
        return [{ label, median: this.median(label) }];
      } catch {
        return [];
      }
    });
    if (measured.length === 0) throw new Error(`no peer measured in this run (${labels.join(', ')})`);
    return { ...measured.reduce((a, b) => (b.median < a.median ? b : a)), measured: measured.length };
  }

  /**
   * A target: `value` computes the figure from medians (a failed side makes it n/a), compared with
   * `limit`. Verdicts never change the exit code unless --strict.
   */
  target(description: string, value: () => number, cmp: '<' | '<=' | '>=', limit: number, unit: Unit | 'x'): void {
    let figure: number;
    try {
      figure = value();
    } catch (err) {
      this.targets.push({ description, actual: `n/a: ${errorText(err)}`, verdict: 'n/a' });
      return;
    }
    if (!Number.isFinite(figure)) {
      this.targets.push({ description, actual: 'n/a: not a number', verdict: 'n/a' });
      return;
    }
    const ok = cmp === '<' ? figure < limit : cmp === '<=' ? figure <= limit : figure >= limit;
    this.targets.push({ description, actual: `${formatValue(figure, unit)} (limit ${cmp} ${formatValue(limit, unit)})`, verdict: ok ? 'PASS' : 'FAIL' });
  }
}

/** Time rows again as MB/s of `bytes`, so that a target reads as a throughput ratio. */
export function throughputRow(report: Report, time: Row, label: string, bytes: number): void {
  report.add({ label, role: time.role, unit: 'MB/s', samples: time.samples.map((ms) => bytes / 1e6 / (ms / 1000)), error: time.error });
}

export function formatValue(v: number, unit: Unit | 'x'): string {
  switch (unit) {
    case 'us': return `${v.toFixed(0)} us`;
    case 'ms': return `${v.toFixed(1)} ms`;
    case 's': return `${v.toFixed(2)} s`;
    case 'MB/s': return `${v.toFixed(1)} MB/s`;
    case 'MB': return `${v.toFixed(2)} MB`;
    case 'x': return `${v.toFixed(2)}x`;
    case 'count': return `${Math.round(v)}`;
  }
}

function pad(s: string, width: number, right = false): string {
  return right ? s.padStart(width) : s.padEnd(width);
}

/** The report as a text table: medians, p90, ratio to the reference row of the same unit, targets. */
export function formatReport(r: Report): string {
  const lines = [`== ${r.name}: ${r.title}`];
  const labelWidth = Math.max(24, ...r.rows.map((row) => row.label.length + (row.role === 'reference' ? 8 : 2)));
  lines.push(`  ${pad('measurement', labelWidth)}${pad('n', 4, true)}${pad('median', 14, true)}${pad('p90', 14, true)}${pad('min', 14, true)}${pad('vs ref', 10, true)}`);
  for (const row of r.rows) {
    const label = pad(row.role === 'reference' ? `${row.label} (ref)` : row.label, labelWidth);
    if (row.error || row.samples.length === 0) {
      lines.push(`  ${label}${pad('-', 4, true)}   n/a: ${row.error ?? 'no samples'}`);
      continue;
    }
    const s = stats(row.samples);
    const ref = row.vs === null ? undefined : r.rows.find((x) => (row.vs ? x.label === row.vs : x.role === 'reference' && x.unit === row.unit)
      && !x.error && x.samples.length > 0);
    const ratio = ref && ref !== row ? `${(s.median / stats(ref.samples).median).toFixed(2)}x` : ref === row ? '1.00x' : '';
    lines.push(`  ${label}${pad(String(s.n), 4, true)}${pad(formatValue(s.median, row.unit), 14, true)}${pad(formatValue(s.p90, row.unit), 14, true)}${pad(formatValue(s.min, row.unit), 14, true)}${pad(ratio, 10, true)}`);
  }
  for (const t of r.targets) lines.push(`  [${t.verdict.padEnd(4)}] ${t.description}: ${t.actual}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------- sampling

export interface MeasureOptions {
  runs: number;
  unit?: Unit;
  /** Untimed runs first (page cache, lazy module loads). */
  warmup?: number;
  /** Untimed, before each run (warm-up runs too). */
  setup?: (i: number) => Promise<void>;
  /** Untimed, after each run, even a failed one. */
  teardown?: (i: number) => Promise<void>;
}

/**
 * Runs `fn` `runs` times and adds a row to the report. `fn` may return its own figure (when part of it
 * must stay untimed, or the unit is not time); otherwise the whole call is timed. A side that throws
 * stops at its first failure and prints 'n/a: <error>': one broken side never stops the others.
 */
export async function measure(report: Report, label: string, role: Role, opts: MeasureOptions,
  fn: (i: number) => Promise<number | void>): Promise<Row> {
  const [row] = await measureInterleaved(report, [{ label, role, run: fn }], opts);
  return row as Row;
}

/** One side of `measureInterleaved`: its own row, run and untimed set-up/tear-down. */
export interface Side {
  label: string;
  role: Role;
  /** as `measure`'s `fn` */
  run: (i: number) => Promise<number | void>;
  /** untimed, before each of this side's runs, after the common `opts.setup` */
  setup?: (i: number) => Promise<void>;
  /** untimed, after each of this side's runs, before the common `opts.teardown` */
  teardown?: (i: number) => Promise<void>;
}

/**
 * `measure` for several sides taken in turn within each iteration (A B A B ...), so that what the other
 * users of the machine do meanwhile hits every side alike: with all of A's runs first, a busy minute
 * lands on one side only and the ratio measures the machine. One row per side; a side that fails stops
 * alone, the others go on.
 */
export async function measureInterleaved(report: Report, sides: readonly Side[], opts: MeasureOptions): Promise<Row[]> {
  const rows = sides.map((s) => report.add({ label: s.label, role: s.role, unit: opts.unit ?? 'ms', samples: [] }));
  const warmup = opts.warmup ?? 0;
  for (let i = 0; i < warmup + opts.runs; i++) {
    for (const [k, side] of sides.entries()) {
      const row = rows[k] as Row;
      if (row.error) continue;
      try {
        checkInterrupted();
        await opts.setup?.(i);
        await side.setup?.(i);
        const start = now();
        const own = await side.run(i);
        const elapsed = now() - start;
        if (i >= warmup) row.samples.push(typeof own === 'number' ? own : elapsed);
      } catch (err) {
        row.error = errorText(err);
      } finally {
        for (const down of [side.teardown, opts.teardown]) {
          try {
            await down?.(i);
          } catch (err) {
            row.error ??= `teardown: ${errorText(err)}`;
          }
        }
      }
    }
    if (rows.every((r) => r.error)) break;
  }
  return rows;
}

// ---------------------------------------------------------------- host commands and scratch space

/** Wall time of a command alone and the CPU time (user + sys) of it and every child it waited for. */
export interface CpuSample {
  wallMs: number;
  cpuMs: number;
}

/**
 * bash's EPOCHREALTIME around the command keeps bash's own start out of the wall time; `times` after it
 * prints the children's user and sys time (getrusage RUSAGE_CHILDREN: the command plus every descendant
 * it or its children waited for, as /usr/bin/time counts, but in ms instead of 10 ms steps). A monitor
 * that daemonized (conmon, for podman and Berth alike) is not counted on either side.
 */
const CPU_SCRIPT = 's=$EPOCHREALTIME; "$@" >/dev/null; rc=$?; e=$EPOCHREALTIME; [ "$rc" = 0 ] || exit "$rc"; echo "bench-wall $s $e" >&2; times >&2';

export async function timedWithCpu(cmd: Argv, opts: CommandOptions = {}): Promise<CpuSample> {
  const { stderr } = await sh('bash', ['-c', CPU_SCRIPT, 'bash', cmd.file, ...cmd.args], { ...opts, env: { ...cmd.env, ...opts.env } });
  const lines = stderr.trim().split('\n');
  const wall = /^bench-wall (\d+\.\d+) (\d+\.\d+)$/.exec(lines.at(-3)?.trim() ?? '');
  const children = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines.at(-1)?.trim() ?? '');
  if (!wall || !children) throw new Error(`cannot read the timing of ${cmd.file}: ${lines.slice(-3).join(' | ')}`);
  const seconds = (m: string, s: string) => Number(m) * 60 + Number(s);
  return {
    wallMs: (Number(wall[2]) - Number(wall[1])) * 1000,
    cpuMs: (seconds(children[1]!, children[2]!) + seconds(children[3]!, children[4]!)) * 1000,
  };
}

/** A host command through the project's runner, with a bench-sized default timeout. */
export function sh(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return run(file, args, { timeout: 60_000, ...opts });
}

const cleanups = new Set<() => Promise<void>>();
let interrupted = false;

/** After Ctrl-C: no new scratch folder or run starts, so clean-up is not racing new work. */
export function interruptRun(): void {
  interrupted = true;
}

function checkInterrupted(): void {
  if (interrupted) throw new Error('interrupted');
}

/**
 * Registers a clean-up that also runs on Ctrl-C; returns the function that runs it once and forgets it.
 * Benchmarks call the returned function in `finally`; the harness runs whatever is left at exit.
 */
export function deferCleanup(fn: () => Promise<void>): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    cleanups.delete(once);
    try {
      await fn();
    } catch (err) {
      // Kept for the harness's last passes: a child may still have been writing below the folder.
      done = false;
      cleanups.add(once);
      throw err;
    }
  };
  cleanups.add(once);
  return once;
}

/**
 * Runs every pending clean-up, newest first; failures are reported, never thrown. After Ctrl-C the
 * interrupted benchmark keeps going while this runs and may make more, hence a few passes.
 */
export async function runPendingCleanups(log: (m: string) => void): Promise<void> {
  for (let pass = 0; pass < 5 && cleanups.size > 0; pass++) {
    for (const fn of [...cleanups].reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`clean-up failed: ${errorText(err)}`);
      }
    }
  }
}

export interface Scratch {
  dir: string;
  /** Unmounts anything left below the folder, then removes it. Idempotent. */
  remove(): Promise<void>;
}

/** A fresh temp folder, removed at the latest when the harness exits. */
export async function scratch(tag: string): Promise<Scratch> {
  checkInterrupted();
  const dir = await mkdtemp(path.join(tmpdir(), `berth-bench-${tag}-`));
  const remove = deferCleanup(() => removeTree(dir));
  return { dir, remove };
}

/** Unmount (deepest first), then rm -rf: a live mount below `dir` would otherwise be emptied through. */
export async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 200 });
}

/** Lazily unmounts every mount at or below `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const table = await readFile('/proc/self/mounts', 'utf8');
  const mounts = table.split('\n').map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    await sh('umount', ['-l', m], { timeout: 10_000, alreadyGone: () => true }).catch(() => undefined);
  }
}

/** The absolute path of an executable on PATH, or undefined. */
export async function findBinary(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const file = path.join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** The id `run -d` prints alone on its last line of stdout (docker, podman, Berth). */
export function containerIdFrom(stdout: string): string {
  const id = stdout.trim().split('\n').pop()?.trim();
  if (!id) throw new Error('run -d printed no container id');
  return id;
}

/** Runs `fn` over `items` and reports each failure, never stopping early: clean-up keeps going. */
export async function forEachSoft<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<string[]> {
  const failures: string[] = [];
  for (const item of items) {
    try {
      await fn(item);
    } catch (err) {
      failures.push(errorText(err));
    }
  }
  return failures;
}

/**
 * Peak RSS of a command, in MB: VmHWM of /proc/PID/status, polled every 10 ms until it exits (the
 * last reading stands; it only grows). Rejects if the command fails.
 */
export function peakRss(file: string, args: readonly string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
    let stderr = '';
    let kb = 0;
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const poll = setInterval(() => {
      try {
        kb = Math.max(kb, Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0));
      } catch { /* exited between polls */ }
    }, 10);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      if (code === 0) resolve(kb / 1024);
      else reject(new Error(`${path.basename(file)} ${args.join(' ').slice(0, 80)} failed (${signal ?? code}): ${stderr.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}
