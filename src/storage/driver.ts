import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { ensureDir, ownedTempName, readdirIfExists, readJsonIfExists, tempOwner, writeJsonAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import { tagAlive } from '../util/liveness.js';
import { run } from '../util/exec.js';
import { hasCommand } from './hosttools.js';
import { mountOverlay, unmount } from './mounts.js';

/**
 * How a snapshot's root filesystem is mounted: the kernel's overlayfs, or fuse-overlayfs (a FUSE daemon doing
 * the same in user space: the rootless fallback for kernels that do not mount overlayfs in a user namespace,
 * Podman's `mount_program`). The upper dir each writes differs a little (changes.ts reads both).
 */
export type StorageDriverName = 'overlay' | 'fuse-overlayfs';
/** What the configuration asks for: `auto` is native overlay unless it cannot mount here (rootless only). */
export type StorageDriverSetting = 'auto' | StorageDriverName;

const SETTINGS: readonly StorageDriverSetting[] = ['auto', 'overlay', 'fuse-overlayfs'];
export const FUSE_OVERLAYFS = 'fuse-overlayfs';

/** `--storage-driver`, `$BERTH_STORAGE_DRIVER` or the config file's `storage-driver`, checked at the edge. */
export function parseStorageDriver(value: string, source: string): StorageDriverSetting {
  // Docker's and Podman's name for the kernel's driver is "overlay"; "overlay2" is Docker's older spelling of it.
  const v = value === 'overlay2' ? 'overlay' : value;
  if ((SETTINGS as readonly string[]).includes(v)) return v as StorageDriverSetting;
  throw new InvalidArgumentError(source, `"${value}" is not a storage driver: Berth has overlay (the kernel's overlayfs) and fuse-overlayfs`,
    'give overlay, fuse-overlayfs or auto (native overlay, or fuse-overlayfs where the kernel cannot mount it rootless)');
}

export class FuseOverlayfsMissingError extends BadStateError {
  constructor(why: string) {
    super(`${why}, and fuse-overlayfs is not installed`, 'install the fuse-overlayfs package (apt-get install fuse-overlayfs), or run Berth as root');
  }
}

export interface DriverFacts {
  rootless: boolean;
  /** whether the fuse-overlayfs program is on PATH */
  fuseInstalled: boolean;
  /** whether the kernel's overlayfs mounts here (asked only rootless, with `auto`) */
  nativeMounts(): Promise<boolean>;
}

/**
 * The driver of new snapshots. As root `auto` is always the kernel's overlay (root can always mount it);
 * fuse-overlayfs may still be chosen by name, as Podman allows, e.g. to try what rootless users on old
 * kernels get. Snapshots keep the driver they were made with (meta.json), so changing the setting only
 * affects containers created afterwards.
 */
export async function chooseDriver(setting: StorageDriverSetting, facts: DriverFacts): Promise<StorageDriverName> {
  if (setting === 'overlay') return 'overlay';
  if (setting === 'fuse-overlayfs') {
    if (!facts.fuseInstalled) throw new FuseOverlayfsMissingError('the storage driver fuse-overlayfs was chosen');
    return 'fuse-overlayfs';
  }
  if (!facts.rootless || (await facts.nativeMounts())) return 'overlay';
  if (!facts.fuseInstalled) throw new FuseOverlayfsMissingError(`this kernel (${os.release()}) cannot mount overlayfs in a user namespace`);
  return 'fuse-overlayfs';
}

/** What the probe found, kept in the store: it is asked once per kernel, not once per command. */
interface ProbeRecord {
  kernel: string;
  native: boolean;
  /** the mount's error when it failed, for `info` and for whoever wonders why fuse-overlayfs was picked */
  error?: string;
}

export const PROBE_FILE = 'storage-probe.json';
const PROBE_PREFIX = 'probe';

/**
 * Whether native overlayfs mounts in this process's (user and mount) namespace: a one-file overlay mounted
 * under the store and unmounted at once. The answer is cached in `<root>/storage-probe.json` for this kernel
 * release: a new kernel (a reboot into an older or newer one) is probed again.
 */
export async function probeNativeOverlay(root: string): Promise<boolean> {
  const file = path.join(root, PROBE_FILE);
  const cached = await readJsonIfExists<ProbeRecord>(file);
  if (cached && cached.kernel === os.release()) return cached.native;
  await ensureDir(root);
  // A probe killed midway left its folder (and perhaps its mount): its owner is dead, so it goes now.
  for (const name of await readdirIfExists(root)) {
    const owner = name.startsWith(PROBE_PREFIX) ? tempOwner(name) : undefined;
    if (!owner || tagAlive(owner)) continue;
    await unmount(path.join(root, name, 'merged')).catch(() => {});
    await fsp.rm(path.join(root, name), { recursive: true, force: true });
  }
  const dir = path.join(root, ownedTempName(PROBE_PREFIX));
  await fsp.mkdir(dir, 0o700);
  let record: ProbeRecord;
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await fsp.mkdir(path.join(dir, d));
    await fsp.writeFile(path.join(dir, 'lower', 'f'), '');
    try {
      await mountOverlay(path.join(dir, 'merged'), { lower: ['lower'], upper: 'upper', work: 'work', cwd: dir });
      record = { kernel: os.release(), native: true };
      failpoint('storage.probe.after-mount');
    } catch (err) {
      record = { kernel: os.release(), native: false, error: (err as Error).message };
    }
  } finally {
    await unmount(path.join(dir, 'merged')).catch(() => {});
  }
  await fsp.rm(dir, { recursive: true, force: true });
  await writeJsonAtomic(file, record);
  return record.native;
}

/** The live facts of this process, for `chooseDriver`. */
export function hostDriverFacts(root: string, rootless: boolean): DriverFacts {
  return { rootless, fuseInstalled: hasCommand(FUSE_OVERLAYFS), nativeMounts: () => probeNativeOverlay(root) };
}

/** fuse-overlayfs's version line, for `info` (undefined when it is not installed). */
export async function fuseOverlayfsVersion(): Promise<string | undefined> {
  if (!hasCommand(FUSE_OVERLAYFS)) return undefined;
  const r = await run(FUSE_OVERLAYFS, ['--version'], { timeout: 5_000 }).catch(() => undefined);
  return /fuse-overlayfs: version (\S+)/.exec(`${r?.stdout ?? ''}\n${r?.stderr ?? ''}`)?.[1];
}
