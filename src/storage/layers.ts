import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CorruptError, NotFoundError } from '../errors.js';
import { digestHex, isDigest, type Digest } from '../ids.js';
import { ensureDir, ownedTempName, pathExists, readdirIfExists, readJsonIfExists } from '../util/fs.js';
import { ensureSpreadDir } from '../util/spread.js';
import { clearIncomplete, flagIncomplete, isAbandoned, isFlagged } from './incomplete.js';
import type { LayerInfo, LayerStore } from './index.js';
import { rebuildBlob, SPLIT_FILE, STASH_DIR } from './tarsplit.js';
import { unpackLayerThreaded } from './unpack-thread.js';

type LayerMeta = Omit<LayerInfo, 'diffPath' | 'warnings'>;

const SHORT_DIR = 'l';
const SHORT_LEN = 16;

/**
 * Layers at `<root>/<diffID hex>/{diff/, meta.json}`. An unpack fills a flagged temp folder and commits it
 * with one rename, so a layer folder is always whole; two unpacks of one layer race to the rename and
 * the loser drops its copy. No lock is needed.
 */
export function openLayerStore(root: string): LayerStore {
  const layerDir = (diffId: Digest) => path.join(root, digestHex(diffId));
  const info = (meta: LayerMeta): LayerInfo => ({ ...meta, diffPath: path.join(layerDir(meta.diffId), 'diff') });

  async function get(diffId: Digest): Promise<LayerInfo> {
    const meta = await readJsonIfExists<LayerMeta>(path.join(layerDir(diffId), 'meta.json'));
    if (!meta) throw new NotFoundError('layer', diffId, 'pull the image again');
    return info(meta);
  }

  return {
    async unpack(src, opts = {}) {
      const expected = opts.expectedDiffId;
      if (expected && (await pathExists(path.join(layerDir(expected), 'meta.json')))) {
        src.destroy();
        return get(expected);
      }
      await ensureSpreadDir(root, 0o700);
      const tmp = path.join(root, ownedTempName('.tmp-layer'));
      await fsp.mkdir(tmp, 0o700);
      try {
        await flagIncomplete(tmp);
        await fsp.mkdir(path.join(tmp, 'diff'), 0o755);
        const result = await unpackLayerThreaded(src, path.join(tmp, 'diff'), {
          srcDigest: opts.srcDigest, splitDir: opts.keepSplit ? tmp : undefined, onTarEntry: opts.onTarEntry, sizeHint: opts.sizeHint,
        });
        if (expected && result.diffId !== expected) {
          throw new CorruptError(`layer diffID mismatch: expected ${expected}, got ${result.diffId}`, 'pull the image again; the layer does not match its image config');
        }
        await opts.beforeCommit?.(result.diffId);
        const meta: LayerMeta = { diffId: result.diffId, size: result.size, created: new Date().toISOString() };
        await fsp.writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
        await clearIncomplete(tmp);
        if (!(await commit(tmp, layerDir(result.diffId))) && result.split) await adoptSplit(tmp, layerDir(result.diffId));
        await ensureShortLink(root, result.diffId);
        return { ...(await get(result.diffId)), warnings: result.warnings };
      } finally {
        await fsp.rm(tmp, { recursive: true, force: true });
      }
    },
    has: (diffId) => pathExists(path.join(layerDir(diffId), 'meta.json')),
    hasSplit: async (diffId) => (await pathExists(path.join(layerDir(diffId), 'meta.json'))) && pathExists(path.join(layerDir(diffId), SPLIT_FILE)),
    rebuild: (diffId, blob) => rebuildBlob(layerDir(diffId), diffId, blob),
    get,
    async list() {
      const out: LayerInfo[] = [];
      for (const name of await readdirIfExists(root)) {
        const diffId = `sha256:${name}`;
        if (!isDigest(diffId)) continue;
        const meta = await readJsonIfExists<LayerMeta>(path.join(root, name, 'meta.json'));
        if (meta) out.push(info(meta));
      }
      return out;
    },
    async remove(diffId) {
      // Renamed away first so that a half-deleted layer never looks whole.
      const trash = path.join(root, `.trash-${randomBytes(6).toString('hex')}`);
      try {
        await fsp.rename(layerDir(diffId), trash);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await fsp.rm(path.join(root, shortLinkName(diffId)), { force: true });
      await fsp.rm(trash, { recursive: true, force: true });
    },
    async reclaim() {
      for (const name of await readdirIfExists(root)) {
        if (name.startsWith('.tmp-') && (await isAbandoned(path.join(root, name), true))) await fsp.rm(path.join(root, name), { recursive: true, force: true });
      }
    },
    async repair() {
      for (const name of await readdirIfExists(root)) {
        const dir = path.join(root, name);
        const stale = name.startsWith('.trash-')
          || (name.startsWith('.tmp-') && (await isAbandoned(dir, true)))
          || (isDigest(`sha256:${name}`) && ((await isFlagged(dir)) || !(await pathExists(path.join(dir, 'meta.json')))));
        if (stale) await fsp.rm(dir, { recursive: true, force: true });
      }
      await removeDanglingLinks(path.join(root, SHORT_DIR));
    },
  };
}

/** A lost race is success (false): the winner put the same bytes in place. */
async function commit(tmp: string, final: string): Promise<boolean> {
  try {
    await fsp.rename(tmp, final);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    return false;
  }
}

/**
 * The winner of a race, or a layer unpacked earlier from a compressed blob, may lack a tar-split: ours
 * fits it, as the same diffID means the same tar and so the same files. The record goes last, so a
 * layer that has one also has its stash.
 */
async function adoptSplit(tmp: string, final: string): Promise<void> {
  if (await pathExists(path.join(final, SPLIT_FILE))) return;
  if (await pathExists(path.join(tmp, STASH_DIR))) {
    await fsp.rm(path.join(final, STASH_DIR), { recursive: true, force: true });
    await fsp.rename(path.join(tmp, STASH_DIR), path.join(final, STASH_DIR));
  }
  await fsp.rename(path.join(tmp, SPLIT_FILE), path.join(final, SPLIT_FILE));
}

/** `l/<short>`, relative to the layers folder: what an overlay lowerdir list names. */
export function shortLinkName(diffId: Digest): string {
  return `${SHORT_DIR}/${digestHex(diffId).slice(0, SHORT_LEN)}`;
}

/**
 * containers/storage's short links: mount options must fit in one page (4096 bytes), and 70 absolute
 * diff paths do not. `l/<16 hex>` → `../<hex>/diff` keeps each lowerdir at 18 bytes.
 */
export async function ensureShortLink(root: string, diffId: Digest): Promise<string> {
  const name = shortLinkName(diffId);
  const target = `../${digestHex(diffId)}/diff`;
  await ensureDir(path.join(root, SHORT_DIR));
  try {
    await fsp.symlink(target, path.join(root, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const existing = await fsp.readlink(path.join(root, name));
    if (existing !== target) throw new CorruptError(`layer short link ${name} points to ${existing}, not ${target}`, 'run the store repair, or remove the link');
  }
  return name;
}

async function removeDanglingLinks(dir: string): Promise<void> {
  for (const name of await readdirIfExists(dir)) {
    if (!(await fsp.stat(path.join(dir, name)).then(() => true, () => false))) await fsp.rm(path.join(dir, name), { force: true });
  }
}
