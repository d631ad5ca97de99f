import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { readdirIfExists, removeDeadTemps } from '../util/fs.js';

/**
 * The layer cache's entries (`<cacheDir>/<key>`, each holding the image ID a step made) whose image is
 * gone: an image prune or rmi took it, so the entry can only ever be a miss. Removed after every image
 * prune, as Docker's classic builder's cache is its images and goes with them. Returns how many went.
 */
export async function pruneBuildCache(cacheDir: string, live: ReadonlySet<string>): Promise<number> {
  await removeDeadTemps(cacheDir);
  let removed = 0;
  for (const name of await readdirIfExists(cacheDir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const file = path.join(cacheDir, name);
    const id = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
    // An entry is written after its image's record: one without a live image is stale, never half-made.
    if (live.has(id)) continue;
    await fsp.rm(file, { force: true });
    removed++;
  }
  return removed;
}
