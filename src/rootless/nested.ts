import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AllocatorOptions, IdMap, NestedUsernsFacts } from '../userns/index.js';
import { rootlessFacts, type RootlessFacts } from './detect.js';
import { rootlessDirs } from './dirs.js';

/** The user's passwd entry on the host, by uid (the namespace shows the host's /etc/passwd). */
export function passwdEntry(text: string, uid: number): { name: string; home: string } | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[2] === String(uid)) return { name: f[0]!, home: f[5]! };
  }
  return undefined;
}

const count = (maps: readonly IdMap[]) => maps.reduce((n, m) => n + m.size, 0);

/** Pure: facts and the passwd text in, for the unit tests. */
export function nestedUsernsFacts(facts: RootlessFacts, passwd: string, env: NodeJS.ProcessEnv): NestedUsernsFacts {
  const entry = passwdEntry(passwd, facts.hostUid);
  return {
    uid: facts.hostUid, gid: facts.hostGid,
    name: entry?.name ?? env.USER ?? String(facts.hostUid),
    home: entry?.home ?? env.HOME ?? '/',
    uids: count(facts.uidMap), gids: count(facts.gidMap),
  };
}

/**
 * The auto ranges of a rootless user: ids 1.. of its namespace (0 is the user, which no container's range
 * may take), recorded in one registry per user beside its default store, so that the containers of every
 * store of the user never share ids (root Berth's registry is host-wide in the same way).
 */
export function nestedAllocatorOptions(facts: RootlessFacts, env: NodeJS.ProcessEnv, euid: number): AllocatorOptions {
  const ranges = (maps: readonly IdMap[]) => maps.flatMap((m) => {
    const from = Math.max(m.containerID, 1);
    const size = m.containerID + m.size - from;
    return size > 0 ? [{ owner: 'rootless', start: from, count: size }] : [];
  });
  const dirs = rootlessDirs(env, euid, facts.hostUid);
  return { registry: path.join(path.dirname(dirs.root), 'berth-userns', 'ranges.json'), ranges: { uid: ranges(facts.uidMap), gid: ranges(facts.gidMap) } };
}

/** This process's, when it runs rootless; undefined as root. */
export function nestedUserns(env: NodeJS.ProcessEnv = process.env): { facts: NestedUsernsFacts; allocator: AllocatorOptions } | undefined {
  const facts = rootlessFacts();
  if (!facts.rootless) return undefined;
  let passwd = '';
  try { passwd = readFileSync('/etc/passwd', 'utf8'); } catch { /* no entry: the environment's names */ }
  return { facts: nestedUsernsFacts(facts, passwd, env), allocator: nestedAllocatorOptions(facts, env, process.geteuid?.() ?? 0) };
}
