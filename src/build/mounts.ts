import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, LockedError, NotFoundError } from '../errors.js';
import { acquireLock, type Lock } from '../util/lock.js';
import { run } from '../util/exec.js';
import { makeBuildTemp, SourceResolver } from './context.js';
import type { BuildContext, ContextEntry, RunMount } from './index.js';

/**
 * `RUN --mount=...` (BuildKit's Dockerfile frontend): what each mount type takes, checked before anything
 * runs, then turned into the container layer's own `--mount` specs for the RUN container. Nothing mounted
 * here is part of the layer: the container layer leaves every mount point out of what it packs.
 */

export type RunMountSpec =
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; mode: number; uid: number; gid: number; readonly: boolean; from?: string; source: string }
  | { type: 'bind'; target: string; from?: string; source: string; readonly: boolean }
  | { type: 'tmpfs'; target: string; size?: string }
  | { type: 'secret'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

const KEYS: Record<string, string[]> = {
  cache: ['target', 'id', 'sharing', 'mode', 'uid', 'gid', 'from', 'source', 'readonly'],
  bind: ['target', 'from', 'source', 'readonly'],
  tmpfs: ['target', 'size'],
  secret: ['target', 'id', 'required', 'mode', 'uid', 'gid'],
};

/** A RUN's mounts, checked and with defaults filled in (BuildKit's), relative targets taken from `workdir`. */
export function checkRunMounts(mounts: readonly RunMount[], line: number, workdir: string): RunMountSpec[] {
  const seen = new Set<string>();
  return mounts.map((m) => {
    const fail = (what: string, hint?: string): never => { throw new InvalidArgumentError('RUN --mount', `line ${line}: ${what}`, hint); };
    const o = m.options;
    if (m.type === 'ssh') fail('RUN --mount=type=ssh is not supported yet', 'copy what the command needs with COPY, or use a build secret');
    const keys = KEYS[m.type];
    if (!keys) fail(`unknown mount type "${m.type}"`, 'use type=cache, bind, tmpfs or secret');
    const bad = Object.keys(o).find((k) => !keys!.includes(k));
    if (bad === 'env' && m.type === 'secret') fail('a secret as an environment variable (env=) is not supported yet', 'mount it as a file: leave env= out');
    if (bad !== undefined) fail(`type=${m.type} takes no "${bad}" option`, `it takes ${keys!.join(', ')}`);
    const bool = (k: string, dflt: boolean) => {
      const v = o[k];
      if (v === undefined) return dflt;
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      return fail(`${k}=${v} is not true or false`);
    };
    const int = (k: string, dflt: number, radix = 10) => {
      const v = o[k];
      if (v === undefined) return dflt;
      if (!(radix === 8 ? /^[0-7]{1,4}$/ : /^\d+$/).test(v)) return fail(`${k}=${v} is not ${radix === 8 ? 'an octal mode' : 'a number'}`);
      return parseInt(v, radix);
    };
    let target: string;
    if (m.type === 'secret') {
      const id = o.id ?? (o.target ? path.posix.basename(o.target) : undefined);
      if (!id) fail('a secret mount needs id= (or a target=)', 'write --mount=type=secret,id=NAME');
      target = path.posix.resolve(workdir, o.target ?? `/run/secrets/${id}`);
      checkTarget(target, fail, seen);
      return { type: 'secret', target, id: id!, required: bool('required', false), mode: int('mode', 0o400, 8), uid: int('uid', 0), gid: int('gid', 0) };
    }
    if (!o.target) fail(`type=${m.type} needs target=`, `write --mount=type=${m.type},target=/path`);
    target = path.posix.resolve(workdir, o.target!);
    checkTarget(target, fail, seen);
    if (m.type === 'tmpfs') {
      if (o.size !== undefined && !/^\d+[kmg]?$/i.test(o.size)) fail(`size=${o.size} is not a size`, 'give bytes, or a number with k, m or g');
      return { type: 'tmpfs', target, ...(o.size !== undefined ? { size: o.size.toLowerCase() } : {}) };
    }
    const from = o.from !== undefined && o.from !== '' ? { from: o.from } : {};
    if (m.type === 'bind') return { type: 'bind', target, ...from, source: o.source ?? '.', readonly: bool('readonly', true) };
    const sharing = o.sharing ?? 'shared';
    if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') fail(`sharing=${sharing} is not shared, private or locked`);
    return {
      type: 'cache', target, id: o.id || target, sharing: sharing as 'shared', mode: int('mode', 0o755, 8), uid: int('uid', 0), gid: int('gid', 0),
      readonly: bool('readonly', false), ...from, source: o.source ?? '.',
    };
  });
}

function checkTarget(target: string, fail: (what: string, hint?: string) => never, seen: Set<string>): void {
  if (target === '/') fail('a mount over the root "/" is not allowed', 'mount at a folder below /');
  if (target === '/proc' || target.startsWith('/proc/')) fail(`${target} is the kernel's /proc, which cannot be mounted over`);
  if (seen.has(target)) fail(`two mounts at ${target}`, 'mount one thing at each path');
  seen.add(target);
}

/** What the RUN mounts need from the build. */
export interface RunMountEnv {
  /** ROOT/build-cache-mounts: one folder per cache id, kept across builds */
  cacheMountsDir: string;
  /** the build's temp folder (secret copies, writable copies of binds) */
  tempDir: string;
  context: BuildContext;
  /** `--secret id=ID,src=PATH` of the build */
  secrets: ReadonlyMap<string, string>;
  /** a stage's or image's root filesystem, mounted read-only for the build, and its image ID */
  rootOf(from: string): Promise<{ root: string; id: string }>;
  line: number;
}

/**
 * The part of a RUN's cache key its mounts bring, as BuildKit keys them: the content of a bind from the
 * context, the image of a bind from a stage. Never a cache mount's content, nor a secret's.
 */
export async function runMountKey(env: RunMountEnv, specs: readonly RunMountSpec[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of specs) {
    if (s.type !== 'bind') continue;
    if (s.from === undefined) out.push(`bind ${s.target} ${await env.context.hash(await env.context.resolve(s.source))}`);
    else out.push(`bind ${s.target} ${(await env.rootOf(s.from)).id} ${s.source}`);
  }
  return out;
}

export interface PreparedMounts {
  /** the container layer's `--mount` specs (Docker's CSV form) */
  specs: string[];
  /** unlocks cache mounts and removes the temporary copies; run once the RUN container is gone */
  release(): Promise<void>;
}

const LOCKED_WAIT_MS = 10 * 60_000;

/** Makes what the mounts need on the host: cache folders (locked as `sharing` asks), secret files, bind sources. */
export async function prepareRunMounts(env: RunMountEnv, specs: readonly RunMountSpec[]): Promise<PreparedMounts> {
  const out: string[] = [];
  const locks: Lock[] = [];
  let temp: string | undefined;
  const tempDir = async () => {
    temp ??= await makeBuildTemp(env.tempDir, 'mounts');
    return temp;
  };
  const release = async () => {
    for (const l of locks) await l.release();
    if (temp) await fsp.rm(temp, { recursive: true, force: true });
  };
  try {
    for (const s of specs) {
      if (s.type === 'tmpfs') {
        out.push(csv({ type: 'tmpfs', target: s.target, ...(s.size ? { 'tmpfs-size': s.size } : {}) }));
      } else if (s.type === 'secret') {
        const src = env.secrets.get(s.id);
        if (src === undefined) {
          // BuildKit leaves an optional secret that was not given unmounted.
          if (s.required) throw new InvalidArgumentError('RUN --mount', `line ${env.line}: secret "${s.id}" is required but was not given`, `give it with --secret id=${s.id},src=FILE`);
          continue;
        }
        // A copy owned and moded as asked; the user's file is never bound itself (its owner and mode stay theirs).
        const file = path.join(await tempDir(), `secret-${out.length}`);
        await fsp.copyFile(src, file);
        await fsp.chown(file, s.uid, s.gid);
        await fsp.chmod(file, s.mode);
        out.push(csv({ type: 'bind', source: file, target: s.target, readonly: 'true' }));
      } else if (s.type === 'bind' && s.from === undefined && env.context.filtered) {
        // BuildKit binds the context as the client sent it, .dockerignore applied: the folder itself would
        // show what the file keeps out (secrets, .git), so the command gets a tree of what COPY would see.
        const tree = path.join(await tempDir(), `bind-${out.length}`);
        await materialize(await env.context.resolve(s.source), tree, s.readonly ? 'link' : 'copy');
        out.push(csv({ type: 'bind', source: tree, target: s.target, ...(s.readonly ? { readonly: 'true' } : {}) }));
      } else if (s.type === 'bind') {
        const source = await bindSource(env, s.from, s.source);
        if (s.readonly) {
          out.push(csv({ type: 'bind', source, target: s.target, readonly: 'true' }));
        } else {
          // BuildKit: a writable bind's writes are discarded, so the command writes into a copy.
          const copy = path.join(await tempDir(), `bind-${out.length}`);
          await run('cp', ['-a', '--reflink=auto', '--', source, copy], { timeout: 10 * 60_000 });
          out.push(csv({ type: 'bind', source: copy, target: s.target }));
        }
      } else {
        const { dir, lock } = await cacheFolder(env, s);
        if (lock) locks.push(lock);
        out.push(csv({ type: 'bind', source: dir, target: s.target, ...(s.readonly ? { readonly: 'true' } : {}) }));
      }
    }
    return { specs: out, release };
  } catch (err) {
    await release();
    throw err;
  }
}

/**
 * Writes resolved context entries as a tree at `dest`: folders with their modes, symlinks as they are, and
 * files hard-linked (`link`: a read-only bind, so nothing can write through the link) or copied (`copy`: a
 * writable bind, whose writes must never reach the user's files). A link across filesystems is a copy.
 * A lone file source becomes the file `dest` itself.
 */
async function materialize(entries: readonly ContextEntry[], dest: string, files: 'link' | 'copy'): Promise<void> {
  const single = entries.length === 1 && entries[0]!.type !== 'directory';
  if (!single) await fsp.mkdir(dest, { mode: 0o755 });
  for (const e of entries) {
    const to = single ? dest : path.join(dest, e.target);
    if (e.type === 'directory') {
      if (e.target === '') await fsp.chmod(dest, e.mode);
      else await fsp.mkdir(to, { mode: e.mode });
      continue;
    }
    if (e.type === 'symlink') {
      await fsp.symlink(e.linkname ?? (await fsp.readlink(e.hostPath)), to);
      continue;
    }
    if (files === 'link') {
      try {
        await fsp.link(e.hostPath, to);
        continue;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      }
    }
    await fsp.copyFile(e.hostPath, to, fsConstants.COPYFILE_FICLONE);
    await fsp.chmod(to, e.mode);
  }
}

async function bindSource(env: RunMountEnv, from: string | undefined, source: string): Promise<string> {
  const where = from === undefined ? undefined : await env.rootOf(from);
  const root = where?.root ?? env.context.root;
  const resolver = new SourceResolver(root, from === undefined ? { links: 'context' } : { links: 'rootfs', where: `--from=${from}` });
  const rel = path.posix.normalize(source.replace(/^\/+/, '') || '.');
  const real = resolver.follow(rel, source);
  return path.join(root, real);
}

/**
 * The folder of a cache id: made on first use (owner and mode as asked, seeded from `from`'s `source` when
 * given), kept across builds. `locked` waits for the holder; `private` takes a folder no other RUN holds.
 */
async function cacheFolder(env: RunMountEnv, s: Extract<RunMountSpec, { type: 'cache' }>): Promise<{ dir: string; lock?: Lock }> {
  await fsp.mkdir(env.cacheMountsDir, { recursive: true, mode: 0o700 });
  const base = path.join(env.cacheMountsDir, createHash('sha256').update(s.id).digest('hex').slice(0, 32));
  let dir = base;
  let lock: Lock | undefined;
  if (s.sharing === 'locked') {
    lock = await acquireLock(`${base}.lock`, LOCKED_WAIT_MS);
  } else if (s.sharing === 'private') {
    for (let i = 0; !lock; i++) {
      const candidate = i ? `${base}-${i}` : base;
      try {
        lock = await acquireLock(`${candidate}.lock`, 0);
        dir = candidate;
      } catch (err) {
        if (!(err instanceof LockedError)) throw err;
      }
    }
  }
  try {
    await fsp.mkdir(dir, { mode: s.mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { dir, ...(lock ? { lock } : {}) };
    await lock?.release();
    throw err;
  }
  try {
    await fsp.chmod(dir, s.mode);
    await fsp.chown(dir, s.uid, s.gid);
    if (s.from !== undefined) {
      const src = await bindSource(env, s.from, s.source);
      await run('cp', ['-a', '--', `${src}/.`, dir], { timeout: 10 * 60_000 });
    }
  } catch (err) {
    await fsp.rm(dir, { recursive: true, force: true });
    await lock?.release();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('file', `"${s.source}" in --from=${s.from}`, 'name a folder of that stage or image', { cause: err });
    throw err;
  }
  return { dir, ...(lock ? { lock } : {}) };
}

/** Docker's CSV form, each value quoted: a path may hold a comma. */
function csv(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${k}="${v}"`).join(',');
}
