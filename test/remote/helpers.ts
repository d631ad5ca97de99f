/** The real CLI with no store options, so that -H, BERTH_HOST and contexts pick the engine; contexts in `configHome`. */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

/** The parent's environment without any setting that picks an engine, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^BERTH_(HOST|CONTEXT|ROOT|RUNROOT|SSH_OPTS)$/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export function remoteCli(env: Record<string, string>) {
  return (...args: string[]) => execa(BIN, args, { reject: false, timeout: 60_000, env: cleanEnv(env), extendEnv: false });
}

export interface PtySession {
  /** All the terminal showed so far. */
  text(): string;
  /** The lines shown after the pty's name, without their line ends. */
  lines(): string[];
  type(text: string): void;
  /** Resolves once the terminal showed `what` (fails with what it showed after 30 s). */
  until(what: string | RegExp): Promise<void>;
  /** The pty's device, for resizing it from outside. */
  tty: Promise<string>;
  /** The command's exit code, as the shell line saw it (null: the 60 s guard killed it). */
  done: Promise<number | null>;
  /** The pty's script process (its children are the berth client and, over ssh, ssh). */
  pid: number;
}

/** berth with `args` in a new pty of 33 rows × 101 columns (util-linux script), in `env`. */
export function inPty(args: string[], env: Record<string, string>): PtySession {
  const line = [BIN, ...args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`)].join(' ');
  const child = spawn('script', ['-qfec', `echo TTY=$(tty); stty rows 33 cols 101; ${line}; echo EXIT=$?`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv(env) });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<number | null>((resolve) => child.on('close', () => {
    clearTimeout(timer);
    const m = /EXIT=(\d+)/.exec(out);
    resolve(m ? Number(m[1]) : null);
  }));
  const until = async (what: string | RegExp) => {
    const seen = () => (typeof what === 'string' ? out.includes(what) : what.test(out));
    for (let i = 0; i < 600 && !seen(); i++) await new Promise((r) => setTimeout(r, 50));
    if (!seen()) throw new Error(`the terminal did not show ${String(what)}; it showed: ${JSON.stringify(out)}`);
  };
  const tty = until(/TTY=\/dev\/pts\/\d+/).then(() => /TTY=(\/dev\/pts\/\d+)/.exec(out)![1]!);
  return {
    text: () => out,
    lines: () => out.split(/\r?\n/).map((l) => l.replace(/\r$/, '')).filter((l) => l && !l.startsWith('TTY=')),
    type: (text) => child.stdin.write(Buffer.from(text, 'latin1')),
    until, tty, done, pid: child.pid!,
  };
}

/**
 * Resizes the pty from outside as a terminal emulator does, rows and columns in one TIOCSWINSZ (one
 * SIGWINCH to berth; see test/cli/terminal.test.ts for why not `stty`).
 */
const WINSZ = 'import fcntl,os,struct,sys,termios; fd=os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY); fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(sys.argv[2]), int(sys.argv[3]), 0, 0))';
export async function resizePty(s: PtySession, rows: number, cols: number): Promise<void> {
  await execa('python3', ['-c', WINSZ, await s.tty, String(rows), String(cols)], { timeout: 5_000 });
}

/** A shell that prints its terminal's size at start and after each resize, then waits for the file `stop` and exits with `code`. */
export const SIZE_THEN_WAIT = (code: number, stop = '/tmp/stop') => ['sh', '-c', `stty size; trap "stty size" WINCH; echo ready; while [ ! -f ${stop} ]; do sleep 0.1; done; exit ${code}`];

/** The processes below `pid` (children, their children, ...) named `comm`, by their /proc entries. */
export function descendantsNamed(pid: number, comm: string): number[] {
  const parentOf = new Map<number, number>();
  const nameOf = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so read around the last ')'.
      const close = stat.lastIndexOf(')');
      nameOf.set(Number(entry), stat.slice(stat.indexOf('(') + 1, close));
      parentOf.set(Number(entry), Number(stat.slice(close + 2).split(' ')[1]));
    } catch { /* gone meanwhile */ }
  }
  const below = (p: number): boolean => {
    for (let q = parentOf.get(p); q !== undefined && q > 1; q = parentOf.get(q)) if (q === pid) return true;
    return false;
  };
  return [...nameOf].filter(([p, name]) => name === comm && below(p)).map(([p]) => p);
}

/** The pid of whatever listens on the unix socket `file` (ss -xlp), if anything does. */
export async function listenerOf(file: string): Promise<number | undefined> {
  const out = (await execa('ss', ['-xlpnH'], { timeout: 10_000 })).stdout;
  const line = out.split('\n').find((l) => l.split(/\s+/).includes(file));
  const m = line && /pid=(\d+)/.exec(line);
  return m ? Number(m[1]) : undefined;
}
