import { execa, type Options } from 'execa';
import { RuntimeError } from '../errors.js';

export interface RunOptions {
  /** Milliseconds; every host command has one (STYLE.md, Child processes). */
  timeout?: number;
  input?: string | Uint8Array;
  cwd?: string;
  env?: Record<string, string>;
  /** Decides from the failed command's stderr whether the thing was already gone (teardown). */
  alreadyGone?: (stderr: string, exitCode: number | undefined) => boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** A host command failed. `alreadyGone` is set by the caller's predicate for idempotent teardown. */
export class CommandError extends RuntimeError {
  readonly alreadyGone: boolean;
  constructor(command: string, stderr: string, exitCode: number | undefined, timedOut: boolean, alreadyGone: boolean, cause: unknown) {
    const what = timedOut ? 'timed out' : `exited with ${exitCode ?? 'a signal'}`;
    super(`${command} ${what}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`,
      'see the command output above; run it by hand to investigate', { cause, command, stderr, exitCode });
    this.alreadyGone = alreadyGone;
  }
}

/** Runs a host command with an argument array (never a shell) and a timeout; throws CommandError. */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const options: Options = {
    timeout: opts.timeout ?? 30_000,
    input: opts.input,
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    stripFinalNewline: false,
    reject: false,
    encoding: 'utf8',
  } as Options;
  const res = await execa(file, args as string[], options);
  const stdout = String(res.stdout ?? '');
  const stderr = String(res.stderr ?? '');
  if (res.failed) {
    const command = [file, ...args].join(' ');
    const exitCode = typeof res.exitCode === 'number' ? res.exitCode : undefined;
    const gone = opts.alreadyGone ? opts.alreadyGone(stderr, exitCode) : false;
    throw new CommandError(command, stderr || String(res.message ?? ''), exitCode, !!res.timedOut, gone, res);
  }
  return { stdout, stderr };
}
