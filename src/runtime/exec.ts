/**
 * `runc exec --process FILE`: an extra process in a running container.
 *
 * Foreground execs run under runc, which relays signals, allocates the terminal itself when
 * process.terminal is set (copying between the pty and its own stdio), and exits with the process's
 * status. A foreground exec has no timeout: it lasts as long as the user's command.
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
import { run, type CommandError } from '../util/exec.js';
import { invokeErrorFromText } from './invoke.js';
import type { Runc } from './runc.js';

/** The OCI process fields Berth sets; a runtime-spec Process fits. */
export interface ExecProcess {
  args?: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  capabilities?: object;
  noNewPrivileges?: boolean;
}

export interface ExecRequest {
  process: ExecProcess;
  detach: boolean;
  io?: { stdin?: Readable; stdout?: Writable; stderr?: Writable };
}

const DETACHED_TIMEOUT_MS = 30_000;

export async function execInContainer(runc: Runc, id: string, bundle: string, req: ExecRequest): Promise<{ exitCode?: number; pid?: number }> {
  const tag = randomBytes(6).toString('hex');
  const files = {
    process: path.join(bundle, `exec-${tag}.json`),
    log: path.join(bundle, `exec-${tag}.log`),
    pid: path.join(bundle, `exec-${tag}.pid`),
  };
  const proc = req.detach ? { ...req.process, terminal: false } : req.process;
  await fsp.writeFile(files.process, JSON.stringify(proc), { mode: 0o600 });
  try {
    return req.detach ? await execDetached(runc, id, files, proc) : await execForeground(runc, id, files, proc, req.io ?? {});
  } finally {
    await Promise.all(Object.values(files).map((f) => fsp.rm(f, { force: true })));
  }
}

type ExecFiles = { process: string; log: string; pid: string };

async function execDetached(runc: Runc, id: string, files: ExecFiles, proc: ExecProcess): Promise<{ pid: number }> {
  try {
    await run(runc.binary, ['--root', runc.root, '--log', files.log, '--log-format', 'json',
      'exec', '--detach', '--pid-file', files.pid, '--process', files.process, id], { timeout: DETACHED_TIMEOUT_MS });
  } catch (err) {
    throw await execError(id, proc, files, '', (err as CommandError).commandExitCode);
  }
  return { pid: Number((await fsp.readFile(files.pid, 'utf8')).trim()) };
}

async function execForeground(runc: Runc, id: string, files: ExecFiles, proc: ExecProcess, io: NonNullable<ExecRequest['io']>): Promise<{ exitCode: number }> {
  const child = spawn(runc.binary, ['--root', runc.root, '--log', files.log, '--log-format', 'json',
    'exec', '--process', files.process, id], { stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const errors = new RuncErrorFilter();
  if (io.stdin && child.stdin) {
    child.stdin.on('error', () => {});
    io.stdin.pipe(child.stdin);
  }
  const outDone = pipeOut(child.stdout!, io.stdout);
  const errDone = pipeOut(child.stderr!.pipe(errors), io.stderr);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => resolve(code ?? 128 + signalNumber(sig)));
  }).finally(() => {
    if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
  });
  await Promise.all([outDone, errDone]);
  // runc logs an error only when it could not start or run the process; the process's own exit
  // codes, 255 included, are never logged.
  const runcSays = await runcLogMessages(files.log);
  if (runcSays || errors.held) throw await execError(id, proc, files, errors.held, exitCode);
  return { exitCode };
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
