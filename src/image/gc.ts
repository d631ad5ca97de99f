import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { isAlreadyGone } from '../errors.js';
import type { Digest } from '../ids.js';
import type { Storage } from '../storage/index.js';
import { ensureDir, readJsonIfExists, readdirIfExists, writeJsonAtomic } from '../util/fs.js';
import { processStartTime, tagAlive } from '../util/liveness.js';
import type { ImageRecords } from './records.js';

interface LeaseFile {
  pid: number;
  start: string;
  /** ms since epoch: blobs written after this may belong to the lease even before it names them */
  since: number;
  blobs: Digest[];
  layers: Digest[];
  /**
   * A registry pull's: what it stored is verified and complete when named, so a killed pull's objects stay
   * for the next pull to reuse (the next prune collects them if none does), as containerd keeps content.
   */
  resumable?: boolean;
}

/**
 * A lease shields the blobs and layers of an import in progress from garbage collection, as
 * containerd's leases do: until the image record is written nothing else refers to them. A lease of a
 * process that died is ignored (and removed by the next collection), so a crash leaves only objects
 * that the next prune collects.
 */
export class Lease {
  private readonly data: LeaseFile;

  private constructor(readonly file: string, resumable: boolean) {
    this.data = { pid: process.pid, start: processStartTime(process.pid) ?? '0', since: Date.now(), blobs: [], layers: [], ...(resumable && { resumable }) };
  }

  static async open(records: ImageRecords, opts: { resumable?: boolean } = {}): Promise<Lease> {
    const dir = await ensureDir(path.join(records.dir, 'leases'));
    const lease = new Lease(path.join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.json`), !!opts.resumable);
    await lease.save();
    return lease;
  }

  get blobs(): readonly Digest[] {
    return this.data.blobs;
  }

  get layers(): readonly Digest[] {
    return this.data.layers;
  }

  async addBlob(d: Digest): Promise<void> {
    if (this.data.blobs.includes(d)) return;
    this.data.blobs.push(d);
    await this.save();
  }

  async addLayer(d: Digest): Promise<void> {
    if (this.data.layers.includes(d)) return;
    this.data.layers.push(d);
    await this.save();
  }

  async release(): Promise<void> {
    await fsp.rm(this.file, { force: true });
  }

  private saving: Promise<void> = Promise.resolve();

  /**
   * One save at a time, each writing the list as it is when it starts: a load stores several layers at
   * once, and two saves side by side could rename an older list over a newer one, leaving a blob unleased.
   */
  private save(): Promise<void> {
    const next = this.saving.catch(() => {}).then(() => writeJsonAtomic(this.file, this.data));
    this.saving = next;
    return next;
  }
}

export interface Collected {
  blobs: Digest[];
  layers: Digest[];
  bytes: number;
}

/**
 * Deletes blobs and layers that no image, snapshot or live lease uses. With `only`, looks at those
 * objects alone (the leftovers of one failed import); without, at everything in the store (prune).
 * Callers hold the images lock, so no image record appears or disappears meanwhile.
 */
export async function collectGarbage(storage: Storage, records: ImageRecords, only?: { blobs: readonly Digest[]; layers: readonly Digest[] }, self?: Lease): Promise<Collected> {
  const leases = await liveLeases(records, self);
  const usedBlobs = new Set<Digest>(leases.flatMap((l) => l.blobs));
  const usedLayers = new Set<Digest>(leases.flatMap((l) => l.layers));
  for (const img of await records.listImages()) {
    usedBlobs.add(img.manifestDigest);
    usedBlobs.add(img.configDigest);
    for (const r of img.repoDigests ?? []) for (const b of r.blobs) usedBlobs.add(b);
    for (const l of img.layers) {
      usedBlobs.add(l.blob);
      usedLayers.add(l.diffId);
    }
  }
  for (const snap of await storage.snapshots.list()) for (const l of snap.layers) usedLayers.add(l);
  const oldestLease = Math.min(...leases.map((l) => l.since));
  const out: Collected = { blobs: [], layers: [], bytes: 0 };

  const blobs = only ? only.blobs : await storage.blobs.list();
  for (const d of blobs) {
    if (usedBlobs.has(d) || (await newerThan(storage.blobs.path(d), oldestLease))) continue;
    const size = await storage.blobs.stat(d).then((s) => s.size, () => 0);
    if (!(await gone(() => storage.blobs.delete(d)))) continue;
    out.blobs.push(d);
    out.bytes += size;
  }
  const layers = only ? only.layers : (await storage.layers.list()).map((l) => l.diffId);
  for (const d of layers) {
    if (usedLayers.has(d)) continue;
    const size = await storage.layers.get(d).then((l) => l.size, () => 0);
    if (!(await gone(() => storage.layers.remove(d)))) continue;
    out.layers.push(d);
    out.bytes += size;
  }
  return out;
}

/** True when this call removed the object; false when someone else already had. */
async function gone(remove: () => Promise<void>): Promise<boolean> {
  try {
    await remove();
    return true;
  } catch (err) {
    if (isAlreadyGone(err)) return false;
    throw err;
  }
}

async function newerThan(file: string, since: number): Promise<boolean> {
  if (!Number.isFinite(since)) return false;
  const st = await fsp.stat(file).catch(() => undefined);
  return !!st && st.mtimeMs >= since - 1000;
}

/**
 * What imports killed mid-way left: each dead process's lease names the blobs and layers it stored;
 * those no image, snapshot or live lease uses are deleted, then the lease. Cheap when there is none,
 * so every command can run it; takes the images lock only when there is work.
 */
export async function reclaimDeadLeases(storage: Storage, records: ImageRecords): Promise<void> {
  const dir = path.join(records.dir, 'leases');
  const dead: { file: string; lease: LeaseFile }[] = [];
  for (const name of await readdirIfExists(dir)) {
    if (name.startsWith('.')) continue;
    const lease = await readJsonIfExists<LeaseFile>(path.join(dir, name)).catch(() => undefined);
    if (lease && !isLive(lease)) dead.push({ file: path.join(dir, name), lease });
  }
  if (!dead.length) return;
  await records.withLock(async () => {
    for (const { file, lease } of dead) {
      if (!lease.resumable) await collectGarbage(storage, records, lease);
      await fsp.rm(file, { force: true });
    }
  });
}

function isLive(lease: LeaseFile): boolean {
  return tagAlive(`${lease.pid} ${lease.start}`);
}

/** The leases of running processes other than `self`; files of dead processes are removed. */
async function liveLeases(records: ImageRecords, self?: Lease): Promise<LeaseFile[]> {
  const dir = path.join(records.dir, 'leases');
  const live: LeaseFile[] = [];
  for (const name of await readdirIfExists(dir)) {
    const file = path.join(dir, name);
    if (name.startsWith('.') || file === self?.file) continue;
    const lease = await readJsonIfExists<LeaseFile>(file).catch(() => undefined);
    if (!lease) continue;
    if (isLive(lease)) live.push(lease);
    else await fsp.rm(file, { force: true });
  }
  return live;
}
