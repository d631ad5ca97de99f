import { spawn } from 'node:child_process';
import { RuntimeError } from '../errors.js';

export interface CommandOptions {
  /** Milliseconds; every host command has one (STYLE.md, Child processes). */
  timeout?: number;
  input?: string | Uint8Array;
  cwd?: string;
  env?: Record<string, string>;
  /** Decides from the failed command's stderr whether the thing was already gone (teardown). */
  alreadyGone?: (stderr: string, exitCode: number | undefined) => boolean;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * A host command failed: execa's error shape (command, exit code, signal, timedOut, stderr) with a message
 * that opens with what happened. `alreadyGone` is set by the caller's predicate for idempotent teardown.
 */
export class CommandError extends RuntimeError {
  readonly alreadyGone: boolean;
  readonly timedOut: boolean;
  readonly signal: string | undefined;
  constructor(command: string, stderr: string, exitCode: number | undefined, signal: string | undefined, timedOut: boolean, alreadyGone: boolean, cause?: unknown) {
    const what = timedOut ? 'timed out' : exitCode !== undefined ? `exited with ${exitCode}` : `was killed by ${signal ?? 'a signal'}`;
    super(`${command} ${what}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`,
      'see the command output above; run it by hand to investigate', { cause, command, stderr, exitCode });
    this.alreadyGone = alreadyGone;
    this.timedOut = timedOut;
    this.signal = signal;
  }
}

/**
 * Runs a host command with an argument array (never a shell) and a timeout; throws CommandError.
 * Built on node:child_process rather than execa: execa's import alone costs ~55 ms, a third of the
 * budget of a whole `berth run`, and these calls need nothing it adds.
 */
export function run(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeout ?? 30_000);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      settled = true;
      clearTimeout(timer);
      const gone = opts.alreadyGone?.(e.message, undefined) ?? false;
      reject(new CommandError(command, `${e.code === 'ENOENT' ? `${file}: not found` : e.message}`, undefined, undefined, false, gone, e));
    });
    // A command that daemonizes (runc exec --detach, dnsmasq) can leave a grandchild holding our pipes
    // open, so 'close' may never come: after 'exit', give the pipes a moment to drain, then settle.
    let settled = false;
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        if (settled) return;
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish(code, signal);
      }, 100).unref();
    });
    child.on('close', (code, signal) => finish(code, signal));
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0 && !timedOut) return resolve({ stdout, stderr });
      const exitCode = code ?? undefined;
      const gone = !timedOut && (opts.alreadyGone?.(stderr, exitCode) ?? false);
      reject(new CommandError(command, stderr, exitCode, signal ?? undefined, timedOut, gone));
    };
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // a command that exits without reading its input is not our error
      child.stdin!.end(opts.input);
    }
  });
}
