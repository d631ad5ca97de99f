import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { digestHex, NAME_PATTERN } from '../ids.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import { run } from '../util/exec.js';
import { ensureDir, pathExists, readdirIfExists, readJsonIfExists, writeJsonAtomic } from '../util/fs.js';
import { withLock } from '../util/lock.js';
import { ensureSpreadDir } from '../util/spread.js';
import { clearIncomplete, flagIncomplete, isAbandoned, isFlagged } from './incomplete.js';
import type { SnapshotInfo, Snapshotter } from './index.js';
import { ensureShortLink } from './layers.js';
import { listChanges, packTree } from './changes.js';
import { hasOwnDevice, mountFuseOverlay, mountOverlay, unmount, unmountFuse } from './mounts.js';
import type { StorageDriverName } from './driver.js';
import { isRootless } from '../rootless/index.js';
import { failpoint } from '../util/failpoint.js';
import { openLayerShifter } from './shifted.js';
import { toHostId } from '../userns/index.js';

type SnapshotMeta = Omit<SnapshotInfo, 'mounted'>;

export interface SnapshotterOptions {
  /** the driver of new snapshots (asked at the first prepare: it may probe the host) */
  driver(): Promise<StorageDriverName>;
}

/** Snapshots made before the driver was recorded were all the kernel's overlay. */
const driverOf = (meta: Pick<SnapshotMeta, 'driver'>): StorageDriverName => meta.driver ?? 'overlay';

/** A fuse-overlayfs snapshot's daemon files, beside its `merged`. */
const fuseFiles = (mountpoint: string) => ({ pid: path.join(path.dirname(mountpoint), 'fuse.pid'), log: path.join(path.dirname(mountpoint), 'fuse.log') });

/** Unmounts a snapshot's root filesystem the way its driver mounted it ("not mounted" is success). */
function unmountAs(driver: StorageDriverName, target: string): Promise<void> {
  return driver === 'fuse-overlayfs' ? unmountFuse(target, fuseFiles(target)) : unmount(target);
}

/**
 * Snapshots at `<snapshots>/<key>/{upper/, work/, merged/, empty/, meta.json}`, mounted as overlayfs over
 * the layers' short links. Read-only ones have no upper: overlayfs mounts lowerdirs alone read-only, but
 * wants at least two of them, so `empty/` is always the bottom one.
 * One lock per snapshot key serializes mount, unmount and remove across processes.
 */
export function openSnapshotter(layout: StoreLayout, opts: SnapshotterOptions): Snapshotter {
  const root = layout.snapshots;
  const dirOf = (key: string) => path.join(root, checkKey(key));
  const locked = <T>(key: string, fn: () => Promise<T>) => withLock(path.join(layout.locks, `snapshot-${checkKey(key)}.lock`), fn);
  const shifter = openLayerShifter(layout.layers, layout.locks);

  async function readMeta(key: string): Promise<SnapshotMeta | undefined> {
    const dir = dirOf(key);
    if (await isFlagged(dir)) return undefined;
    const meta = await readJsonIfExists<SnapshotMeta>(path.join(dir, 'meta.json'));
    // Snapshots made before owners were recorded: image mounts were the read-only ones.
    return meta && { ...meta, owner: meta.owner ?? (meta.readOnly ? 'image-mount' : 'container') };
  }

  async function mustMeta(key: string): Promise<SnapshotMeta> {
    const meta = await readMeta(key);
    if (!meta) throw new NotFoundError('snapshot', key, 'create the container again');
    return meta;
  }

  async function mountMeta(meta: SnapshotMeta): Promise<void> {
    if (await hasOwnDevice(meta.mountpoint)) return;
    const dir = path.dirname(meta.mountpoint);
    const lower: string[] = [];
    // overlayfs lists the top layer first; ours are bottom first
    if (meta.idmap) lower.push(...(await shifter.acquire(meta.key, meta.layers, meta.idmap)).reverse());
    else for (const diffId of [...meta.layers].reverse()) lower.push(await ensureShortLink(layout.layers, diffId));
    if (meta.readOnly || !lower.length) lower.push(path.join(dir, 'empty'));
    const rw = meta.readOnly ? {} : { upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
    await ensureDir(layout.layers);
    const dirs = { lower, ...rw, cwd: layout.layers };
    if (driverOf(meta) === 'fuse-overlayfs') await mountFuseOverlay(meta.mountpoint, dirs, isRootless(), fuseFiles(meta.mountpoint));
    else await mountOverlay(meta.mountpoint, dirs);
  }

  async function removeDir(dir: string): Promise<void> {
    const meta = await readJsonIfExists<SnapshotMeta>(path.join(dir, 'meta.json'));
    // Without a record (a prepare killed before writing it) the driver is unknown: the fuse way unmounts
    // either kind, and also ends a daemon whose mount never appeared.
    await unmountAs(meta ? driverOf(meta) : 'fuse-overlayfs', path.join(dir, 'merged'));
    await fsp.rm(dir, { recursive: true, force: true });
    if (meta?.idmap) await shifter.release(meta.key, meta.idmap);
  }

  return {
    async prepare(key, parent, how) {
      const readOnly = !!how.readOnly;
      if (readOnly && !parent.layers.length) throw new InvalidArgumentError('layers', 'a read-only snapshot needs at least one layer');
      for (const diffId of parent.layers) {
        if (!(await pathExists(path.join(layout.layers, digestHex(diffId), 'meta.json')))) throw new NotFoundError('layer', diffId, 'pull the image again');
      }
      const dir = dirOf(key);
      const driver = await opts.driver();
      return locked(key, async () => {
        await ensureSpreadDir(root, STORE_MODES.traverse);
        try {
          await fsp.mkdir(dir, STORE_MODES.owned);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError('snapshot', key, undefined, { cause: err });
          throw err;
        }
        await flagIncomplete(dir);
        try {
          const sub = readOnly ? ['merged', 'empty'] : ['merged', 'empty', 'upper', 'work'];
          for (const name of sub) await fsp.mkdir(path.join(dir, name), 0o755);
          const meta: SnapshotMeta = {
            key, owner: how.owner, layers: [...parent.layers], image: parent.image, readOnly, mountpoint: path.join(await fsp.realpath(dir), 'merged'),
            driver, ...(how.idmap ? { idmap: how.idmap } : {}),
          };
          if (how.idmap) await ownByMappedRoot(dir, readOnly ? [] : ['upper', 'work'], how.idmap);
          await writeJsonAtomic(path.join(dir, 'meta.json'), meta);
          await mountMeta(meta);
          failpoint('storage.snapshot.after-mount');
          await clearIncomplete(dir);
          return { ...meta, mounted: true };
        } catch (err) {
          await removeDir(dir).catch(() => {});
          throw err;
        }
      });
    },
    mount: (key) => locked(key, async () => {
      const meta = await mustMeta(key);
      await mountMeta(meta);
      return meta.mountpoint;
    }),
    unmount: (key) => locked(key, async () => {
      const meta = await readMeta(key);
      if (meta) await unmountAs(driverOf(meta), meta.mountpoint);
    }),
    remove: (key) => locked(key, async () => {
      if (await pathExists(dirOf(key))) await removeDir(dirOf(key));
    }),
    async get(key) {
      const meta = await readMeta(key);
      return meta && { ...meta, mounted: await hasOwnDevice(meta.mountpoint) };
    },
    async list() {
      const out: SnapshotInfo[] = [];
      for (const key of await readdirIfExists(root)) {
        if (!NAME_PATTERN.test(key)) continue;
        const meta = await readMeta(key);
        if (meta) out.push({ ...meta, mounted: await hasOwnDevice(meta.mountpoint) });
      }
      return out;
    },
    async usage(key) {
      const meta = await mustMeta(key);
      if (meta.readOnly) return 0;
      const { stdout } = await run('du', ['-s', '--bytes', path.join(dirOf(key), 'upper')], { timeout: 120_000 });
      return Number(stdout.split('\t')[0]);
    },
    async changes(key, exclude) {
      const meta = await mustMeta(key);
      if (meta.readOnly) return [];
      // A shifted snapshot's upper has shifted owners: compared with the shifted lowers, an untouched folder is unchanged.
      const lowers = meta.idmap
        ? shifter.lowerDirs(meta.layers, meta.idmap).reverse().map((rel) => path.join(layout.layers, rel))
        : [...meta.layers].reverse().map((d) => path.join(layout.layers, digestHex(d), 'diff'));
      return listChanges(path.join(dirOf(key), 'upper'), lowers, exclude, driverOf(meta));
    },
    async packChanges(key, exclude) {
      const meta = await mustMeta(key);
      if (meta.readOnly) throw new InvalidArgumentError('snapshot', `${key} is read-only and has no changes to pack`);
      return packTree(path.join(dirOf(key), 'upper'), { overlay: driverOf(meta), exclude, ...(meta.idmap ? { idmap: meta.idmap } : {}) });
    },
    async repair() {
      for (const key of await readdirIfExists(root)) {
        if (!NAME_PATTERN.test(key)) continue;
        await locked(key, async () => {
          const dir = dirOf(key);
          // flagged by a dead owner, or a crash between mkdir and the flag left a folder with neither
          const stale = (await isAbandoned(dir, false)) || (!(await pathExists(path.join(dir, 'meta.json'))) && (await isAbandoned(dir, true)));
          if (stale) await removeDir(dir);
        });
      }
      // Asked under the mapping's lock: a snapshot prepared meanwhile has its folder before its reference.
      await shifter.repair((ref) => pathExists(path.join(root, ref, 'meta.json')));
    },
  };
}

/**
 * The writable layer belongs to the container's root, so that it can write where the image lets root
 * write; the snapshot's folder (0710) gets its group, so that the container, and no other, may pass
 * through it to `merged` (see STORE_MODES).
 */
async function ownByMappedRoot(dir: string, writable: readonly string[], idmap: NonNullable<SnapshotMeta['idmap']>): Promise<void> {
  const uid = toHostId(idmap.uid, 0);
  const gid = toHostId(idmap.gid, 0);
  if (uid === undefined || gid === undefined) return;
  for (const name of writable) await fsp.chown(path.join(dir, name), uid, gid);
  await fsp.chown(dir, 0, gid);
}

/** Keys become folder names: the name rule keeps them inside the snapshots folder. */
function checkKey(key: string): string {
  if (!NAME_PATTERN.test(key) || key.length > 128) throw new InvalidArgumentError('snapshot key', `"${key}" is not a valid name`);
  return key;
}
