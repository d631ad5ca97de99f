/**
 * `runc exec --process FILE`: an extra process in a running container.
 *
 * Foreground execs run under runc, which relays signals, allocates the terminal itself when
 * process.terminal is set (copying between the pty and its own stdio), and exits with the process's
 * status. A foreground exec has no timeout: it lasts as long as the user's command.
 * runc sizes that terminal from process.consoleSize before the command runs (docker's ConsoleSize, no
 * race), and on its own SIGWINCH copies the size of its controlling terminal, which it also requires
 * (`open /dev/tty` fails without one). The client's terminal given in the io may be another one (an API
 * caller's), so its resizes are applied here too: to the pty the process holds, through /proc.
 * Detached execs get /dev/null as stdio (runc hands its own stdio to the process) and no terminal
 * (a detached terminal needs a console socket receiver, which Berth does not run).
 *
 * runc says why a process could not start only in text: it logs the failure as JSON to --log, and
 * the process-side failures after exec(2) (exec format error) appear on the process's stderr.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type { ClientTerminal, StdioStreams, TerminalSize } from '../types.js';
import { run, type CommandError } from '../util/exec.js';
import { invokeErrorFromText } from './invoke.js';
import { followResizes } from './terminal.js';
import type { RuncCli } from './runc.js';

/** The OCI process fields Berth sets; a runtime-spec Process fits. */
export interface ExecProcess {
  args?: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  capabilities?: object;
  noNewPrivileges?: boolean;
  consoleSize?: { height: number; width: number };
}

export interface RuncExecRequest {
  process: ExecProcess;
  detach: boolean;
  /** `terminal` counts only with process.terminal. */
  io?: StdioStreams;
  /**
   * Foreground only: after this long the process is killed (SIGKILL) and the result says `timedOut`.
   * Healthchecks need it; a user's exec has none, it lasts as long as the user's command.
   */
  timeoutMs?: number;
}

const DETACHED_TIMEOUT_MS = 30_000;
const RESIZE_TIMEOUT_MS = 5_000;

export async function execInContainer(runc: RuncCli, id: string, bundle: string, req: RuncExecRequest): Promise<{ exitCode?: number; pid?: number; timedOut?: boolean }> {
  const tag = randomBytes(6).toString('hex');
  const files = {
    process: path.join(bundle, `exec-${tag}.json`),
    log: path.join(bundle, `exec-${tag}.log`),
    pid: path.join(bundle, `exec-${tag}.pid`),
  };
  const proc = req.detach ? { ...req.process, terminal: false } : withConsoleSize(req.process, req.io?.terminal);
  await fsp.writeFile(files.process, JSON.stringify(proc), { mode: 0o600 });
  try {
    return req.detach ? await execDetached(runc, id, files, proc) : await execForeground(runc, id, files, proc, req.io ?? {}, req.timeoutMs);
  } finally {
    await Promise.all(Object.values(files).map((f) => fsp.rm(f, { force: true })));
  }
}

type ExecFiles = { process: string; log: string; pid: string };

/** A size that came with the process (copied from the container's, say) is not the client's: it goes. */
function withConsoleSize(proc: ExecProcess, terminal: ClientTerminal | undefined): ExecProcess {
  const { consoleSize: _, ...rest } = proc;
  const size = proc.terminal ? terminal?.size() : undefined;
  return size && size.rows > 0 && size.columns > 0 ? { ...rest, consoleSize: { height: size.rows, width: size.columns } } : rest;
}

async function execDetached(runc: RuncCli, id: string, files: ExecFiles, proc: ExecProcess): Promise<{ pid: number }> {
  try {
    await run(runc.binary, ['--root', runc.root, '--log', files.log, '--log-format', 'json',
      'exec', '--detach', '--pid-file', files.pid, '--process', files.process, id], { timeout: DETACHED_TIMEOUT_MS });
  } catch (err) {
    throw await execError(id, proc, files, '', (err as CommandError).commandExitCode);
  }
  return { pid: Number((await fsp.readFile(files.pid, 'utf8')).trim()) };
}

async function execForeground(runc: RuncCli, id: string, files: ExecFiles, proc: ExecProcess, io: StdioStreams, timeoutMs?: number): Promise<{ exitCode: number; timedOut?: boolean }> {
  const terminal = proc.terminal ? io.terminal : undefined;
  const runcArgs = ['--root', runc.root, '--log', files.log, '--log-format', 'json',
    'exec', ...(terminal || timeoutMs !== undefined ? ['--pid-file', files.pid] : []), '--process', files.process, id];
  // runc exec -t wants a terminal of its own to copy from (see inPty); a client terminal that is our own
  // stdout (the CLI's) serves, any other (an API client's) gets a pty made for it.
  const ownPty = proc.terminal && !(io.stdout as { isTTY?: boolean } | undefined)?.isTTY;
  const [file, args] = ownPty ? inPty(runc.binary, runcArgs, io.terminal?.size()) : [runc.binary, runcArgs];
  // script ends the pty's input (a VEOF byte) when its stdin ends: without a client stdin it gets one that never does.
  const child = spawn(file, args, { stdio: [io.stdin || ownPty ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...(ownPty ? { env: { ...process.env, SHELL: '/bin/sh' } } : {}) });
  let timedOut = false;
  // The process, not runc, is killed: runc then exits with the process's status and cleans up itself.
  let timer = timeoutMs === undefined ? undefined : setTimeout(function kill() {
    timedOut = true;
    // runc writes the pid file once the process runs: until then, try again.
    void killFromPidFile(files.pid).then((done) => { if (!done) timer = setTimeout(kill, 100); });
  }, timeoutMs);
  const unfollow = terminal ? followResizes(terminal, (size) => resizeExecTerminal(files.pid, size)) : () => {};
  const errors = new RuncErrorFilter();
  child.stdin?.on('error', () => {});
  if (io.stdin && child.stdin) {
    io.stdin.pipe(child.stdin);
  }
  // In a pty, runc's complaints come with the output.
  const outDone = pipeOut(ownPty ? child.stdout!.pipe(errors) : child.stdout!, io.stdout);
  const errDone = pipeOut(ownPty ? child.stderr! : child.stderr!.pipe(errors), io.stderr);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    // With a time limit, 'exit': 'close' also waits for the output pipes, which a check's children may hold.
    child.once(timeoutMs === undefined ? 'close' : 'exit', (code, sig) => resolve(code ?? 128 + signalNumber(sig)));
  }).finally(() => {
    clearTimeout(timer);
    unfollow();
    if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
  });
  const drained = Promise.all([outDone, errDone]);
  if (timeoutMs !== undefined) {
    // A check's children may still hold its output open: what came until a moment after the exit is the output.
    await Promise.race([drained, new Promise((r) => setTimeout(r, timedOut ? 0 : 1000).unref())]);
    [child.stdout, child.stderr].forEach((s) => s?.destroy());
  } else {
    await drained;
  }
  // runc logs an error only when it could not start or run the process; the process's own exit
  // codes, 255 included, are never logged.
  const runcSays = await runcLogMessages(files.log);
  if (runcSays || errors.held) throw await execError(id, proc, files, errors.held, exitCode);
  return timedOut ? { exitCode, timedOut } : { exitCode };
}

/**
 * runc exec with a terminal opens its own controlling terminal (`open /dev/tty`) when its stdio is none,
 * sets it raw and copies its size into the process's pty (at once, and on each SIGWINCH it gets). A
 * service has none, or has the user's, which is not the client's: so runc runs under util-linux `script`,
 * in a pty of its own, whose size is first set to the client's so that runc's first copy is right.
 * Later resizes go to the process's pty directly (resizeExecTerminal); this pty never changes size again,
 * so runc never copies over them.
 */
function inPty(binary: string, args: readonly string[], size: TerminalSize | undefined): [string, string[]] {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const stty = size && size.rows > 0 && size.columns > 0 ? `stty rows ${size.rows} cols ${size.columns} 2>/dev/null; ` : '';
  return ['script', ['-q', '-e', '-c', `${stty}exec ${[binary, ...args].map(quote).join(' ')}`, '/dev/null']];
}

/** Whether the pid file named a process (which is killed, or was gone already). */
async function killFromPidFile(pidFile: string): Promise<boolean> {
  const pid = Number((await fsp.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  return true;
}

/**
 * Sets the size of the exec's terminal through the process's own stdin, /proc/PID/fd/0 (the pty slave
 * in the container's devpts). runc writes the pid file once the process runs; before that the
 * process.json size holds, so a resize that comes earlier is dropped.
 */
async function resizeExecTerminal(pidFile: string, size: TerminalSize): Promise<void> {
  const pid = Number((await fsp.readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  const stdin = `/proc/${pid}/fd/0`;
  // Only a pty: a process that moved its stdin elsewhere must not have that file's size changed.
  if (!(await fsp.readlink(stdin).catch(() => '')).startsWith('/dev/pts/')) return;
  await run('stty', ['-F', stdin, 'rows', String(size.rows), 'cols', String(size.columns)], { timeout: RESIZE_TIMEOUT_MS });
}

async function execError(id: string, proc: ExecProcess, files: ExecFiles, stderrText: string, exitCode: number | undefined): Promise<Error> {
  const text = [await runcLogMessages(files.log), stderrText].filter(Boolean).join('\n');
  const mapped = invokeErrorFromText(text, proc.args?.[0] ?? '');
  if (mapped) return mapped;
  return new RuntimeError(`cannot exec in container ${id}: ${text.trim() || `runc exited with ${exitCode}`}`,
    'check that the container is running and the command exists in it', { command: 'runc exec', stderr: text, exitCode });
}

async function runcLogMessages(file: string): Promise<string> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return '';
  }
  const msgs: string[] = [];
  for (const line of text.split('\n')) {
    try {
      const rec = JSON.parse(line) as { level?: string; msg?: string };
      if ((rec.level === 'error' || rec.level === 'fatal') && rec.msg) msgs.push(rec.msg);
    } catch {
      // not a JSON line
    }
  }
  return msgs.join('\n');
}

/**
 * Passes the exec's stderr through, except runc's own complaints: runc prints its failure to stderr
 * too ("exec failed: ..."), and the init prints "exec CMD: exec format error" when exec(2) fails.
 * Those become the thrown error instead of output. Only whole chunks that start that way are held.
 */
class RuncErrorFilter extends Transform {
  held = '';
  private seenOutput = false;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    const text = chunk.toString('utf8');
    if (!this.seenOutput && /^(exec failed: |exec \S+: exec format error)/.test(text)) this.held += text;
    else {
      this.seenOutput = true;
      this.push(chunk);
    }
    cb();
  }
}

function pipeOut(src: Readable, dst: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (dst) src.pipe(dst, { end: false });
    else src.resume();
    src.once('end', resolve);
    src.once('error', () => resolve());
  });
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? os.constants.signals[sig] ?? 0 : 0;
}
