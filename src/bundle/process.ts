import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { CreateRequest } from '../options.js';
import { checkEnv, DEFAULT_PATH, mergeEnv, parseEnvFile } from './env.js';
import type { ImageConfig } from './types.js';

/**
 * Entrypoint and Cmd exactly as dockerd merges them: --entrypoint replaces the image's Entrypoint and also
 * drops the image's Cmd (an ENTRYPOINT from the command line never runs with arguments meant for another);
 * an empty --entrypoint ('' or []) clears it; a command replaces Cmd.
 */
export function resolveArgs(image: ImageConfig, req: Pick<CreateRequest, 'entrypoint' | 'command'>): string[] {
  const userEntrypoint = req.entrypoint;
  const cleared = userEntrypoint !== undefined && (userEntrypoint.length === 0 || (userEntrypoint.length === 1 && userEntrypoint[0] === ''));
  const entrypoint = userEntrypoint === undefined ? image.Entrypoint ?? [] : cleared ? [] : userEntrypoint;
  const cmd = req.command?.length ? req.command : userEntrypoint === undefined ? image.Cmd ?? [] : [];
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new InvalidArgumentError('command', 'no command specified', 'give a command after the image name, or use an image with a CMD or ENTRYPOINT');
  return args;
}

/** -w, else the image's WorkingDir, else /. Docker requires -w to be absolute; an image's is taken from /. */
export function resolveWorkdir(image: ImageConfig, req: Pick<CreateRequest, 'workdir'>): string {
  if (req.workdir) {
    if (!path.posix.isAbsolute(req.workdir)) {
      throw new InvalidArgumentError('--workdir', `the working directory '${req.workdir}' is invalid, it needs to be an absolute path`);
    }
    return path.posix.resolve(req.workdir);
  }
  return path.posix.resolve('/', image.WorkingDir || '/');
}

export interface EnvContext {
  image: ImageConfig;
  req: Pick<CreateRequest, 'env' | 'tty'>;
  envFileText: readonly string[];
  /** undefined when the container shares the host's UTS namespace */
  hostname: string | undefined;
}

/**
 * The process environment in dockerd's order: PATH, HOSTNAME, TERM (with -t), then the image's Env with
 * --env-file and -e merged over it (-e wins), so each of those can override the first three. HOME comes
 * last, at start (finishSpec), from the user's passwd entry, unless something here set it.
 */
export function buildEnv(ctx: EnvContext): string[] {
  const fromFiles = ctx.envFileText.flatMap((t) => parseEnvFile(t));
  const user = [...fromFiles, ...(ctx.req.env ?? [])];
  checkEnv('--env', user);
  const base = [`PATH=${DEFAULT_PATH}`];
  if (ctx.hostname) base.push(`HOSTNAME=${ctx.hostname}`);
  if (ctx.req.tty) base.push('TERM=xterm');
  return mergeEnv(mergeEnv(base, ctx.image.Env ?? []), user);
}
