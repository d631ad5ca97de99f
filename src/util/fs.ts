import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp, constants } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { ownerGone, ownerTag } from './lock.js';

/**
 * Atomic write: temp file in the same folder, fsync, chmod, rename (containers/storage's
 * AtomicWriteFile). A reader sees the old file or the new one, never half of either,
 * and a crash leaves at most a `.tmp-*` file that `removeStaleTemps` clears.
 * Private by default: the store's records may hold secrets (env), see STORE_MODES in paths.ts.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, ownedTempName(`.tmp-${path.basename(file)}`));
  const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.chmod(mode);
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * `writeFileAtomic` for a stream: the file at `file` appears only once all of `src` is in it and
 * `complete` (the producer's own verdict, e.g. a child's exit) has resolved.
 */
export async function writeStreamAtomic(file: string, src: Readable, mode = 0o644, complete?: Promise<unknown>): Promise<void> {
  const tmp = path.join(path.dirname(file), ownedTempName(`.tmp-${path.basename(file)}`));
  try {
    await Promise.all([pipeline(src, createWriteStream(tmp, { flags: 'wx', mode })), complete]);
    await fsp.rename(tmp, file);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

export async function writeJsonAtomic(file: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', mode);
}

/** Reads JSON, or returns undefined when the file does not exist. Other errors propagate. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
}

/** Private by default (STORE_MODES); `mode` also applies to every missing parent it makes. */
export async function ensureDir(dir: string, mode = 0o700): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode });
  return dir;
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Lists a directory, treating a missing one as empty. */
export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Removes `.tmp-*` leftovers of writes interrupted by a crash. */
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await readdirIfExists(dir)) {
    if (name.startsWith('.tmp-')) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * `<prefix>.<pid>.<starttime>.<random>`: a temp name that says whose it is, so that any later command
 * can remove the leftovers of one that was killed (`removeDeadTemps`) without touching a live one's.
 */
export function ownedTempName(prefix: string): string {
  return `${prefix}.${ownerTag().replace(' ', '.')}.${randomBytes(6).toString('hex')}`;
}

/** The owner tag ("pid starttime") an `ownedTempName` carries, or undefined for any other name. */
export function tempOwner(name: string): string | undefined {
  const owner = /\.(\d+)\.(\d+)\.[0-9a-f]{12}$/.exec(name);
  return owner ? `${owner[1]} ${owner[2]}` : undefined;
}

/** Removes `.tmp-*` entries of `dir` whose owner has exited. Unowned (older) names are left to prune. */
export async function removeDeadTemps(dir: string): Promise<void> {
  for (const name of await readdirIfExists(dir)) {
    if (!name.startsWith('.tmp-')) continue;
    const owner = tempOwner(name);
    if (owner && ownerGone(owner)) await fsp.rm(path.join(dir, name), { recursive: true, force: true });
  }
}
