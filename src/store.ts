import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { STORE_MODES, type StoreLayout } from './paths.js';
import { markTopDir } from './util/spread.js';
import { pathExists, readJsonIfExists, readdirIfExists, writeJsonAtomic } from './util/fs.js';

/**
 * The store's format version, in ROOT/store.json. 2: private modes (STORE_MODES). A store without the
 * file was written before (files 0644 under 0755 folders, any local user could read a container's env):
 * opening it tightens what is there once, then records the version so later commands only read one file.
 * 3: the folders of unrelated trees carry ext4's top-folder flag (util/spread.ts); new stores get it when
 * they make those folders, older ones when they are opened.
 */
export const STORE_VERSION = 3;

const MARKER = 'store.json';

/** Folders of the root that others may pass through; every other one is the owner's alone. */
const TRAVERSED = new Set(['snapshots', 'containers']);
/** Files of containers/<id>/ bound into the container, which its non-root users must read. */
const MOUNTED = new Set(['hosts', 'resolv.conf', 'hostname']);

/**
 * Brings an older store to this version and gives the top folders their modes. Idempotent. Returns false,
 * making nothing, while the root does not exist: a late command (the monitor's exit hook of a store that
 * was deleted) must not make it again. The first write makes a new root private (ensureDir's default);
 * the next open, finding it, sets the rest and the version.
 */
export async function openStore(layout: StoreLayout): Promise<boolean> {
  const marker = path.join(layout.root, MARKER);
  const stored = await readJsonIfExists<{ version?: number }>(marker).catch(() => undefined);
  const version = stored?.version ?? 1;
  if (version >= STORE_VERSION) return true;
  if (!(await pathExists(layout.root))) return false;
  try {
    if (version < 2) {
      // Not recursive: a root removed meanwhile must stay removed.
      for (const d of TRAVERSED) await fsp.mkdir(path.join(layout.root, d), STORE_MODES.traverse).catch(ignoreExists);
      await tightenModes(layout);
    }
    // The folders whose subfolders are unrelated trees (util/spread.ts).
    for (const d of [layout.layers, layout.snapshots, layout.volumes]) if (await pathExists(d)) await markTopDir(d);
    await writeJsonAtomic(marker, { version: STORE_VERSION });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  return true;
}

function ignoreExists(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}

/**
 * Sets the modes STORE_MODES asks for on what an older version wrote. Only folders are walked whose
 * contents are the store's own records: layers, blobs and snapshot uppers hold image and container files
 * whose modes are content, and a closed folder above them is what keeps others out.
 */
async function tightenModes(layout: StoreLayout): Promise<void> {
  await chmodIf(layout.root, STORE_MODES.traverse);
  await chmodIf(layout.runroot, STORE_MODES.dir);
  for (const name of await readdirIfExists(layout.root)) {
    const p = path.join(layout.root, name);
    if (TRAVERSED.has(name)) continue;
    await chmodIf(p, STORE_MODES.dir, STORE_MODES.file);
  }
  await chmodIf(layout.snapshots, STORE_MODES.traverse);
  for (const key of await readdirIfExists(layout.snapshots)) {
    const dir = path.join(layout.snapshots, key);
    if (await chmodIf(dir, STORE_MODES.owned, STORE_MODES.file) !== 'dir') continue;
    await chmodIf(path.join(dir, 'meta.json'), STORE_MODES.file, STORE_MODES.file);
  }
  await chmodIf(layout.containers, STORE_MODES.traverse);
  for (const name of await readdirIfExists(layout.containers)) {
    const dir = path.join(layout.containers, name);
    const isContainer = /^[0-9a-f]{64}$/.test(name);
    if (await chmodIf(dir, isContainer ? STORE_MODES.owned : STORE_MODES.dir, STORE_MODES.file) !== 'dir') continue;
    await tightenTree(dir, isContainer ? MOUNTED : new Set());
  }
}

/** Files 0600 (or `mounted` for the names in `mounted`), folders 0700, all the way down. */
async function tightenTree(dir: string, mounted: ReadonlySet<string>): Promise<void> {
  for (const name of await readdirIfExists(dir)) {
    const p = path.join(dir, name);
    const kind = await chmodIf(p, STORE_MODES.dir, mounted.has(name) ? STORE_MODES.mounted : STORE_MODES.file);
    if (kind === 'dir') await tightenTree(p, new Set());
  }
}

/**
 * chmods `p` to `dirMode` if a folder, `fileMode` if a regular file (a symlink or a missing path is left
 * alone: chmod would follow the link); returns what it found.
 */
async function chmodIf(p: string, dirMode: number, fileMode?: number): Promise<'dir' | 'file' | undefined> {
  const st = await fsp.lstat(p).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st?.isDirectory()) {
    if ((st.mode & 0o7777) !== dirMode) await fsp.chmod(p, dirMode);
    return 'dir';
  }
  if (st?.isFile() && fileMode !== undefined) {
    if ((st.mode & 0o7777) !== fileMode) await fsp.chmod(p, fileMode);
    return 'file';
  }
  return undefined;
}
