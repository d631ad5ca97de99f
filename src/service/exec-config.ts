/**
 * The JSON bodies of exec create and exec start, checked field by field: a wrong type is a 400 naming the
 * field, and a field Berth cannot honour, set to anything but its default, is refused rather than ignored.
 */
import type { ExecRequest, TerminalSize } from '../types.js';
import { ApiError } from './errors.js';

export interface ExecConfig {
  req: ExecRequest;
  attach: { stdin: boolean; stdout: boolean; stderr: boolean };
  consoleSize?: TerminalSize;
}

export function execConfig(body: Record<string, unknown>): ExecConfig {
  const f = fields(body);
  const command = f.strings('Cmd') ?? [];
  if (!command.length) throw new ApiError(400, 'No exec command specified');
  // Berth's exec reads no detach keys: a sequence asked for would reach the process as typed.
  const detachKeys = f.string('DetachKeys');
  if (detachKeys) throw new ApiError(400, 'DetachKeys is not supported yet for exec');
  // docker exec -d sets Detach here too; what counts is exec start's, as in Docker.
  f.bool('Detach');
  const user = f.string('User');
  const workdir = f.string('WorkingDir');
  const env = f.strings('Env');
  const attach = { stdin: f.bool('AttachStdin') ?? false, stdout: f.bool('AttachStdout') ?? false, stderr: f.bool('AttachStderr') ?? false };
  const req: ExecRequest = {
    command,
    interactive: attach.stdin,
    tty: f.bool('Tty') ?? false,
    privileged: f.bool('Privileged') ?? false,
    ...(env?.length ? { env } : {}),
    ...(user ? { user } : {}),
    ...(workdir ? { workdir } : {}),
  };
  const consoleSize = f.size('ConsoleSize');
  return { req, attach, ...(consoleSize ? { consoleSize } : {}) };
}

export function startConfig(body: Record<string, unknown>): { detach: boolean; consoleSize?: TerminalSize } {
  const f = fields(body);
  // Tty here only tells the client's framing, which the instance's own Tty decides, as in Docker.
  f.bool('Tty');
  const consoleSize = f.size('ConsoleSize');
  return { detach: f.bool('Detach') ?? false, ...(consoleSize ? { consoleSize } : {}) };
}

function fields(body: Record<string, unknown>) {
  const bad = (name: string, want: string) => new ApiError(400, `${name} must be ${want}, not ${JSON.stringify(body[name])?.slice(0, 100)}`);
  const present = (name: string) => body[name] !== undefined && body[name] !== null;
  return {
    bool(name: string): boolean | undefined {
      if (!present(name)) return undefined;
      if (typeof body[name] !== 'boolean') throw bad(name, 'true or false');
      return body[name] as boolean;
    },
    string(name: string): string | undefined {
      if (!present(name)) return undefined;
      if (typeof body[name] !== 'string') throw bad(name, 'a string');
      return body[name] as string;
    },
    strings(name: string): string[] | undefined {
      if (!present(name)) return undefined;
      const v = body[name];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw bad(name, 'an array of strings');
      return v as string[];
    },
    // [height, width]; 0 × 0 (the CLI's value when its output is no terminal) means no size.
    size(name: string): TerminalSize | undefined {
      if (!present(name)) return undefined;
      const v = body[name];
      if (!Array.isArray(v) || v.length !== 2 || v.some((x) => !Number.isInteger(x) || x < 0 || x > 0xffff)) throw bad(name, '[height, width], whole numbers from 0 to 65535');
      const [rows, columns] = v as [number, number];
      return rows > 0 && columns > 0 ? { rows, columns } : undefined;
    },
  };
}
