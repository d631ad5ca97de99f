import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempOwner } from '../util/fs.js';
import { processTag, tagAlive } from '../util/liveness.js';

/**
 * containers/storage's crash repair: a folder is flagged `incomplete` before work starts and unflagged
 * when it is whole. The flag holds its owner ("pid starttime") so that repair, which needs no lock,
 * never deletes a folder another live process is still filling.
 */
const MARKER = 'incomplete';

/** A folder that has no flag yet is left alone for this long: its maker may be between mkdir and flag. */
const UNFLAGGED_GRACE_MS = 60_000;

export async function flagIncomplete(dir: string): Promise<void> {
  await fsp.writeFile(path.join(dir, MARKER), processTag(process.pid));
}

export async function clearIncomplete(dir: string): Promise<void> {
  await fsp.rm(path.join(dir, MARKER), { force: true });
}

export async function isFlagged(dir: string): Promise<boolean> {
  return (await ownerOf(dir)) !== undefined;
}

/**
 * True when the folder is flagged and its owner is gone, or when `expectFlag` is set (a temp folder)
 * and it has stayed unflagged past the grace period.
 */
export async function isAbandoned(dir: string, expectFlag: boolean): Promise<boolean> {
  // A folder named by its owner (ownedTempName) needs no flag to be judged: a maker killed before or while
  // writing the flag leaves none, or an empty one.
  const owner = (await ownerOf(dir)) || tempOwner(path.basename(dir));
  // An empty flag is one being written right now.
  if (!owner) {
    if (!expectFlag) return false;
    const st = await fsp.stat(dir).catch(() => undefined);
    return !!st && Date.now() - st.mtimeMs > UNFLAGGED_GRACE_MS;
  }
  return !tagAlive(owner);
}

async function ownerOf(dir: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(path.join(dir, MARKER), 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}
