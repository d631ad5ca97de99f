/**
 * OpenSSH connection sharing (ControlMaster) for ssh:// hosts. Every connection Berth makes is its own ssh
 * session (a `run` makes three: create and attach, wait, start), and a new ssh connection pays the TCP and
 * key exchange each time; one master kept open a short while (ControlPersist) serves them all as sessions,
 * and the next command too (bench/remote.ts measures both ways).
 *
 * On by default, and the user's choice wins: nothing is added when BERTH_SSH_OPTS or the user's ssh config
 * (as `ssh -G` reads it) names a ControlMaster or ControlPath of their own, and a ControlPersist in
 * BERTH_SSH_OPTS comes first on the command line, so it is the one ssh keeps. The sockets live in a
 * private folder (0700, ours) of the user's runtime dir; a folder that is not ours and private is not used.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HostTarget } from './uri.js';

type SshTarget = Extract<HostTarget, { kind: 'ssh' }>;

/** Seconds an idle master stays for the next connection: long enough for a command's calls and the next command. */
export const CONTROL_PERSIST_S = 10;

/** BERTH_SSH_OPTS as ssh arguments (split on spaces: keep paths plain). */
export function userSshOpts(env: NodeJS.ProcessEnv): string[] {
  return (env.BERTH_SSH_OPTS ?? '').split(/\s+/).filter(Boolean);
}

/** What ssh is told about the target besides options: port, user, host. */
export function targetArgs(target: SshTarget): string[] {
  return [...(target.port ? ['-p', String(target.port)] : []), ...(target.user ? ['-l', target.user] : []), '--', target.host];
}

/** The folder of the control sockets: $XDG_RUNTIME_DIR/berth-ssh, else /run/user/UID/berth-ssh, else TMPDIR/berth-ssh-UID. */
export function controlDir(env: NodeJS.ProcessEnv): string {
  const uid = process.getuid?.() ?? 0;
  const runtime = env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR) ? env.XDG_RUNTIME_DIR : `/run/user/${uid}`;
  return existsSync(runtime) ? path.join(runtime, 'berth-ssh') : path.join(os.tmpdir(), `berth-ssh-${uid}`);
}

/** The folder made (0700) when missing; undefined when it is not a private folder of ours. */
function privateDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === (process.getuid?.() ?? 0) && (st.mode & 0o077) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the user chose multiplexing (or its absence) themselves, on the command line or in their config. */
function userChose(target: SshTarget, env: NodeJS.ProcessEnv): boolean {
  const user = userSshOpts(env);
  if (user.some((o, i) => o === '-S' || o === '-M' || o === '-MM' || /^ControlMaster|^ControlPath/i.test(o) || (user[i - 1] === '-o' && /^Control(Master|Path)/i.test(o)))) return true;
  try {
    const seen = execFileSync('ssh', ['-G', ...user, ...targetArgs(target)], { encoding: 'utf8', timeout: 5000, env, stdio: ['ignore', 'pipe', 'ignore'] });
    const value = (key: string) => new RegExp(`^${key} (.*)$`, 'm').exec(seen)?.[1]?.trim();
    return (value('controlmaster') ?? 'false') !== 'false' || (value('controlpath') ?? 'none') !== 'none';
  } catch {
    // ssh -G failed (no ssh, a bad option): the connection itself will say why; no sharing meanwhile.
    return true;
  }
}

/** The -o options that share one master, or none (the user's choice, or no private folder). */
export function muxOptions(target: SshTarget, env: NodeJS.ProcessEnv): string[] {
  if (userChose(target, env)) return [];
  const dir = privateDir(controlDir(env));
  if (!dir) return [];
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${dir}/%C`, '-o', `ControlPersist=${CONTROL_PERSIST_S}`];
}

/**
 * Asks the master of `target` to exit (`ssh -O exit`), as `context rm` does for its host: nothing of it
 * stays behind. A host with no master (or one the user's own config manages) is left alone.
 */
export function closeMaster(target: SshTarget, env: NodeJS.ProcessEnv): void {
  const mux = muxOptions(target, env);
  if (!mux.length) return;
  spawnSync('ssh', [...userSshOpts(env), ...mux, '-O', 'exit', ...targetArgs(target)], { timeout: 5000, env, stdio: 'ignore' });
}
