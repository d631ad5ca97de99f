/**
 * The CLI in a real terminal: `run -it`, `exec -it`, `start -ai` and `attach` give the container's
 * terminal the user's size and follow its resizes (SIGWINCH). util-linux `script` provides the pty; the
 * test resizes it from outside with `stty -F`, as a terminal emulator would, which signals berth.
 * Uses the built bin/berth.js (run `npm run build` first).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unmountUnder } from '../helpers/engine.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const execFileP = promisify(execFile);
let root = '';
let runroot = '';

const berth = (...args: string[]) => execFileP(BIN, ['--root', root, '--runroot', runroot, ...args], { timeout: 50_000 });
const berthLine = () => `${BIN} --root ${root} --runroot ${runroot}`;

// The first `stty size` runs before any resize could reach the container: it shows the size it started with.
const SIZE_THEN_FOLLOW = `sh -c 'stty size; trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done'`;

interface PtySession {
  /** All the terminal showed so far, \r\n line ends. */
  text(): string;
  tty: Promise<string>;
  done: Promise<number | null>;
}

/** Runs a shell line in a new pty of 33 rows × 101 columns; the line's first output is the pty's name. */
function inPty(line: string): PtySession {
  const child = spawn('script', ['-qfec', `echo TTY=$(tty); stty rows 33 cols 101; ${line}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  const done = new Promise<number | null>((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve(code);
  }));
  const tty = until(() => /TTY=(\/dev\/pts\/\d+)/.test(out)).then(() => /TTY=(\/dev\/pts\/\d+)/.exec(out)![1]!);
  return { text: () => out, tty, done };
}

async function until(cond: () => boolean | Promise<boolean>, seen?: PtySession, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`condition not met in time${seen ? `; the terminal showed: ${JSON.stringify(seen.text())}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The lines the container wrote after the pty's name. */
const shown = (s: PtySession) => s.text().split(/\r?\n/).map((l) => l.replace(/\r$/, '')).filter((l) => l && !l.startsWith('TTY='));

/**
 * Resizes the pty from outside as a terminal emulator does, rows and columns in one TIOCSWINSZ: the kernel
 * sends berth one SIGWINCH. (`stty rows R cols C` makes two changes: a trace of berth's client showed it
 * applying both, in order, yet in about one full-suite run of three under load the container reported only
 * the first; where the second was lost, below berth's client, is not found yet. Terminals resize at once.)
 */
const WINSZ = 'import fcntl,os,struct,sys,termios; fd=os.open(sys.argv[1], os.O_RDWR|os.O_NOCTTY); fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(sys.argv[2]), int(sys.argv[3]), 0, 0))';
const resizePty = async (s: PtySession, rows: number, cols: number) =>
  execFileP('python3', ['-c', WINSZ, await s.tty, String(rows), String(cols)], { timeout: 5_000 });

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-tty-'));
  runroot = path.join('/run/berth', `y${path.basename(root).slice(-6)}`);
  await berth('image', 'default');
});

afterAll(async () => {
  if (!root) return;
  await berth('system', 'reset', '--force').catch(() => {});
  unmountUnder(root);
  unmountUnder(runroot);
  await rm(root, { recursive: true, force: true });
  await rm(runroot, { recursive: true, force: true });
});

describe('berth in a terminal', () => {
  it('run -it: the container starts at the terminal size and follows its resizes', async () => {
    const s = inPty(`exec ${berthLine()} run -it --rm --name tty-run --network none busybox ${SIZE_THEN_FOLLOW}`);
    await until(() => shown(s).includes('ready'), s);
    expect(shown(s)[0]).toBe('33 101');
    await resizePty(s, 40, 120);
    await until(() => shown(s).includes('40 120'), s);
    await berth('kill', 'tty-run');
    expect(await s.done).toBe(137);
  });

  it('exec -it: the exec starts at the terminal size and follows its resizes', async () => {
    await berth('run', '-d', '--name', 'tty-exec', '--network', 'none', 'busybox', 'sleep', '300');
    const s = inPty(`exec ${berthLine()} exec -it tty-exec ${SIZE_THEN_FOLLOW}`);
    await until(() => shown(s).includes('ready'), s);
    expect(shown(s)[0]).toBe('33 101');
    await resizePty(s, 40, 120);
    await until(() => shown(s).includes('40 120'), s);
    await berth('rm', '-f', 'tty-exec');
    // The client ends with its container (null: the pty's 50 s guard had to kill it).
    expect(await s.done).not.toBeNull();
  });

  it('start -ai and attach: the size comes with them, then each resize', async () => {
    await berth('create', '-it', '--name', 'tty-start', '--network', 'none', 'busybox', 'stty', 'size');
    const started = inPty(`exec ${berthLine()} start -ai tty-start`);
    expect(await started.done).toBe(0);
    expect(shown(started)).toEqual(['33 101']);

    await berth('run', '-dit', '--name', 'tty-attach', '--network', 'none', 'busybox', 'sh', '-c', 'trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done');
    await until(async () => (await berth('logs', 'tty-attach')).stdout.includes('ready'));
    const s = inPty(`exec ${berthLine()} attach tty-attach`);
    await until(() => shown(s).includes('33 101'), s);
    await resizePty(s, 40, 120);
    await until(() => shown(s).includes('40 120'), s);
    await berth('rm', '-f', 'tty-start', 'tty-attach');
    expect(await s.done).not.toBeNull();
  });
});
