import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { digestHex, type Digest } from '../ids.js';
import { run } from '../util/exec.js';
import { ensureDir, ownedTempName, pathExists, readdirIfExists, removeDeadTemps, writeJsonAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { failpoint } from '../util/failpoint.js';
import { applyXattrs, readXattrs, type XattrSet } from './xattrs.js';
import { mappingKey, toHostId, type IdMap, type IdMapping } from '../userns/index.js';

const SHIFTED_DIR = 'shifted';

/**
 * How a user-namespaced container sees its image's files with owners it maps. Today: a copy of each layer
 * with every owner shifted into the mapping, since runc 1.1.5 cannot make idmapped mounts. A runtime that
 * can would implement this with no copy (lowers = the layers themselves, mounted idmapped).
 *
 * Life: `acquire` (a snapshot takes the mapping; copies made once, then shared) → `release` (the last
 * snapshot of a mapping removes its copies). `repair` drops references of snapshots that no longer exist.
 */
export interface LayerShifter {
  /** Lower dirs for overlayfs, relative to the layer store's root, in the order of `layers` (bottom first). */
  acquire(ref: string, layers: readonly Digest[], mapping: IdMapping): Promise<string[]>;
  /** What `acquire` returns, without making or referencing anything (the copies of a mapping in use). */
  lowerDirs(layers: readonly Digest[], mapping: IdMapping): string[];
  release(ref: string, mapping: IdMapping): Promise<void>;
  repair(isLive: (ref: string) => Promise<boolean>): Promise<void>;
}

/**
 * Copies at `<layers>/shifted/<mapping key>/<diffID hex>/diff`, with `refs/<snapshot key>` naming who uses
 * the mapping. A copy is made in an owned temp folder and renamed into place: a killed copy is never seen
 * whole, and its temp folder is removed by the next command that touches the mapping. Hard links cannot
 * stand in for a copy: they share the inode, and with it the owner.
 */
export function openLayerShifter(layersRoot: string, locks: string): LayerShifter {
  const mapDir = (mapping: IdMapping) => path.join(layersRoot, SHIFTED_DIR, mappingKey(mapping));
  const locked = <T>(key: string, fn: () => Promise<T>) => withLock(path.join(locks, `shifted-${key}.lock`), fn);

  const lowerDirs = (layers: readonly Digest[], mapping: IdMapping) => layers.map((d) => path.join(SHIFTED_DIR, mappingKey(mapping), digestHex(d), 'diff'));

  async function dropIfUnused(dir: string): Promise<void> {
    if (!(await readdirIfExists(path.join(dir, 'refs'))).length) await fsp.rm(dir, { recursive: true, force: true });
  }

  return {
    acquire: (ref, layers, mapping) => locked(mappingKey(mapping), async () => {
      const dir = mapDir(mapping);
      await ensureDir(path.join(dir, 'refs'));
      await writeJsonAtomic(path.join(dir, 'mapping.json'), mapping);
      // The reference first: a crash below leaves a ref that repair drops, never a copy nobody counts.
      await fsp.writeFile(path.join(dir, 'refs', ref), '');
      await removeDeadTemps(dir);
      for (const diffId of layers) {
        const hex = digestHex(diffId);
        const target = path.join(dir, hex);
        if (!(await pathExists(target))) {
          const tmp = path.join(dir, ownedTempName('.tmp-shift'));
          try {
            await fsp.mkdir(tmp, 0o700);
            await shiftedCopy(path.join(layersRoot, hex, 'diff'), path.join(tmp, 'diff'), mapping);
            failpoint('storage.shift.before-rename');
            await fsp.rename(tmp, target);
          } finally {
            await fsp.rm(tmp, { recursive: true, force: true });
          }
        }
      }
      return lowerDirs(layers, mapping);
    }),
    lowerDirs,
    release: (ref, mapping) => locked(mappingKey(mapping), async () => {
      const dir = mapDir(mapping);
      await fsp.rm(path.join(dir, 'refs', ref), { force: true });
      await dropIfUnused(dir);
    }),
    async repair(isLive) {
      for (const key of await readdirIfExists(path.join(layersRoot, SHIFTED_DIR))) {
        if (!/^[0-9a-f]{16}$/.test(key)) continue;
        await locked(key, async () => {
          const dir = path.join(layersRoot, SHIFTED_DIR, key);
          for (const ref of await readdirIfExists(path.join(dir, 'refs'))) {
            if (!(await isLive(ref))) await fsp.rm(path.join(dir, 'refs', ref), { force: true });
          }
          await removeDeadTemps(dir);
          await dropIfUnused(dir);
        });
      }
    },
  };
}

/**
 * `cp -a` keeps modes, times, xattrs (overlay's opaque flags), hard links and whiteouts; then each entry's
 * owner is shifted, read from the source so that a hard-linked inode is shifted once, not twice. chown(2)
 * clears set-user-ID and set-group-ID bits even for root, so those modes are put back after it.
 * An id the mapping leaves out becomes the mapped nobody (65534), as the kernel would show it.
 */
async function shiftedCopy(src: string, dst: string, mapping: IdMapping): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', '--', src, dst], { timeout: 30 * 60_000 });
  const caps = await readXattrs(src, undefined, CAPABILITY_PATTERN);
  const shift = (maps: readonly IdMap[], id: number) => toHostId(maps, id) ?? toHostId(maps, 65534) ?? maps[0]!.hostID;
  const visit = async (rel: string, st: Stats) => {
    const to = path.join(dst, rel);
    await fsp.lchown(to, shift(mapping.uid, st.uid), shift(mapping.gid, st.gid));
    if (!st.isSymbolicLink() && (st.mode & 0o6000)) await fsp.chmod(to, st.mode & 0o7777);
  };
  const walk = async (rel: string): Promise<void> => {
    const full = path.join(src, rel);
    const st = await fsp.lstat(full);
    await visit(rel, st);
    if (!st.isDirectory()) return;
    for (const name of await fsp.readdir(full)) await walk(path.join(rel, name));
  };
  await walk('');
  // chown(2) removed the file capabilities; they come back for the namespace's root.
  const items: XattrSet[] = [];
  for (const [rel, attrs] of caps) {
    const value = attrs[CAPABILITY] && shiftCapability(attrs[CAPABILITY], mapping.uid);
    if (value) items.push({ path: rel, name: CAPABILITY, value });
  }
  await applyXattrs(dst, items);
}

const CAPABILITY = 'security.capability';
const CAPABILITY_PATTERN = '^security\\.capability$';
const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;

/**
 * A file capability (linux/capability.h's vfs_ns_cap_data) for a copy whose owners moved into `uidMap`:
 * version 3, whose rootid names the root the capabilities are for, as the kernel's cap_convert_nscap
 * writes one set inside a user namespace and as containers/storage shifts them. A version 2 one is its
 * root's (container id 0); a version 3 one keeps its rootid, seen through the map. A root the map leaves
 * out could never exec the file with them: the capability is dropped, as the kernel would ignore it.
 */
export function shiftCapability(value: Buffer, uidMap: readonly IdMap[]): Buffer | undefined {
  if (value.length < 20) return undefined;
  const magic = value.readUInt32LE(0);
  const revision = (magic & VFS_CAP_REVISION_MASK) >>> 0;
  if (revision !== VFS_CAP_REVISION_2 && !(revision === VFS_CAP_REVISION_3 && value.length >= 24)) return undefined;
  const rootid = toHostId(uidMap, revision === VFS_CAP_REVISION_3 ? value.readUInt32LE(20) : 0);
  if (rootid === undefined) return undefined;
  const out = Buffer.alloc(24);
  out.writeUInt32LE(((magic & ~VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_3) >>> 0, 0);
  value.copy(out, 4, 4, 20);
  out.writeUInt32LE(rootid, 20);
  return out;
}
