import { lstatSync, mkdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/** Where a rootless user's store, state and configuration go by default (Podman's choices). */
export interface RootlessDirs {
  /** $XDG_DATA_HOME/berth, else ~/.local/share/berth */
  readonly root: string;
  /** $XDG_RUNTIME_DIR/berth when that folder is the user's, else /tmp/berth-run-UID */
  readonly runroot: string;
  /** $XDG_CONFIG_HOME/berth */
  readonly config: string;
}

/**
 * `euid` is the process's own (0 inside the namespace, where the user's files show as 0's), `hostUid` the
 * user's on the host, which names the fallback folder the same from inside and outside.
 */
export function rootlessDirs(env: NodeJS.ProcessEnv, euid: number, hostUid: number): RootlessDirs {
  const home = env.HOME || os.homedir();
  const xdg = (name: string, fallback: string) => {
    const v = env[name];
    return v && path.isAbsolute(v) ? v : path.join(home, fallback);
  };
  return {
    root: path.join(xdg('XDG_DATA_HOME', '.local/share'), 'berth'),
    runroot: runtimeDirOf(env.XDG_RUNTIME_DIR, euid) ?? `/tmp/berth-run-${hostUid}`,
    config: path.join(xdg('XDG_CONFIG_HOME', '.config'), 'berth'),
  };
}

function runtimeDirOf(dir: string | undefined, euid: number): string | undefined {
  if (!dir || !path.isAbsolute(dir)) return undefined;
  try {
    const st = statSync(dir);
    // pam_systemd makes it 0700 and the user's; anything else is not a runtime dir we may trust.
    if (!st.isDirectory() || st.uid !== euid || (st.mode & 0o077) !== 0) return undefined;
  } catch {
    return undefined;
  }
  return path.join(dir, 'berth');
}

/**
 * Makes `dir` (mode 0700) or checks the one that is there: a real folder of `euid`, writable by nobody else.
 * A folder under world-writable /tmp can be made first by another user, who would then own (or swap) our
 * runtime state, pause pid and sockets: such a folder is refused, never adopted or repaired.
 */
export function ensurePrivateDir(dir: string, euid: number): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') mkdirSync(dir, { recursive: true, mode: 0o700 });
    else if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  const why = !st.isDirectory() ? 'is not a folder (a symbolic link or a file)'
    : st.uid !== euid ? `is owned by uid ${st.uid}, not by this user`
    : (st.mode & 0o022) !== 0 ? `is writable by others (mode ${(st.mode & 0o777).toString(8)})`
    : undefined;
  if (why) {
    throw new InvalidArgumentError('runtime folder', `${dir} ${why}: another user may have made it to take over Berth's state`,
      `remove ${dir} (as root if needed) and run the command again, or set XDG_RUNTIME_DIR to a folder of your own (mode 0700)`);
  }
}
