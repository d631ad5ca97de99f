import { InvalidArgumentError } from '../errors.js';
import type { Process } from '../../runtime-spec/types.js';
import { resolveCapabilities } from './capabilities.js';
import { checkEnv, envKey, mergeEnv } from './env.js';
import { resolveWorkdir } from './process.js';
import { checkUserSpec, resolveUser, type UserDb } from './user.js';

/** What `exec` may change of the container's process. */
export interface ExecOverrides {
  command: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  tty?: boolean;
  privileged?: boolean;
}

/**
 * The process of `exec`: the running container's own (its env, user, cwd, capabilities, rlimits) with the
 * exec's overrides, by dockerd's rules: -e merges over the container's env, -u is resolved against the
 * container's passwd, -t adds TERM=xterm unless set, --privileged gives every capability the engine holds.
 */
export function execProcess(current: Process, over: ExecOverrides, userDb: UserDb, hostCapabilities?: string[]): Process {
  if (!over.command.length) throw new InvalidArgumentError('command', 'exec needs a command', 'e.g. berth exec CONTAINER sh');
  checkEnv('--env', over.env ?? []);
  let env = mergeEnv(current.env ?? [], over.env ?? []);
  if (over.tty && !env.some((e) => envKey(e) === 'TERM')) env = [...env, 'TERM=xterm'];
  const user = over.user ? resolveUser(checkUserSpec(over.user), userDb) : undefined;
  const caps = over.privileged ? resolveCapabilities({ privileged: true }, hostCapabilities) : undefined;
  return {
    ...current,
    terminal: !!over.tty,
    args: [...over.command],
    env,
    cwd: over.workdir ? resolveWorkdir({}, { workdir: over.workdir }) : current.cwd,
    ...(user ? { user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } } : {}),
    ...(caps ? { capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] } } : {}),
  };
}
