/**
 * `ps` without reading every record (issue 20). `containers/.catalog.json` keeps, per container, what the
 * views and `ps --filter` need (a ListedRecord: the record without its runc spec, about a tenth of it)
 * and the identity of the record file it was read from (inode, size, mtime, ctime). The records stay the
 * only truth: a listing stats each record (one statx, no read) and reads again only those whose file
 * changed, appeared, or is too new to trust. So no writer has to keep the catalog up to date, a command
 * killed at any point leaves nothing to repair, and a catalog deleted, corrupted, torn by a crash or
 * written by another Berth is rebuilt by the next listing.
 */
import { readFileSync, statSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { failpoint } from '../util/failpoint.js';
import { ownedTempName, tempOwner } from '../util/fs.js';
import { ownerGone } from '../util/lock.js';
import type { ImageConfig, SpecPlan } from './ports.js';
import type { ContainerConfig, ContainerRecord } from './record.js';

/** The record as lists see it: everything but the planned runc spec, the image's config and the request. */
export type ListedConfig = Omit<ContainerConfig, 'spec' | 'imageConfig' | 'request'> & {
  /** older records (no `mounts`) name their binds here only */
  spec: { mounts: Pick<SpecPlan['mounts'], 'user'> };
  imageConfig: Pick<ImageConfig, 'ExposedPorts'>;
};
export type ListedRecord = Omit<ContainerRecord, 'config'> & { config: ListedConfig };

export function listedOf(rec: ContainerRecord): ListedRecord {
  const { spec, imageConfig, request: _request, ...config } = rec.config;
  return {
    ...rec,
    config: {
      ...config,
      spec: { mounts: { user: config.mounts ? [] : spec.mounts.user.filter((m) => m.type === 'bind') } },
      imageConfig: imageConfig.ExposedPorts ? { ExposedPorts: imageConfig.ExposedPorts } : {},
    },
  };
}

const FILE = '.catalog.json';
const VERSION = 1;

/**
 * A record changed within this long of being stat'ed could be rewritten again in the same timestamp tick
 * (ext4's is the kernel's coarse clock, a jiffy) and, with its inode number reused and the same size,
 * look unchanged. Such entries are kept but read again until older: git's "racily clean" rule.
 */
const RACY_NS = 2_000_000_000n;

interface Entry {
  /** "ino size mtimeNs ctimeNs" of container.json when it was read; "" when too new to trust */
  stamp: string;
  record: ListedRecord;
}

interface CatalogFile {
  version: number;
  entries: Record<string, Entry>;
}

export class Catalog {
  private readonly file: string;
  private entries: Map<string, Entry> | undefined;

  /**
   * `recordFile` names a container's record; `load` reads it as the record store does (upgrading an older
   * one), undefined when it is gone.
   */
  constructor(private readonly dir: string, private readonly recordFile: (id: string) => string,
    private readonly load: (id: string) => Promise<ContainerRecord | undefined>) {
    this.file = path.join(dir, FILE);
  }

  /** Every container in `ids` (the store's folders, one readdir) as lists see it, read again only where changed. */
  async list(ids: readonly string[]): Promise<ListedRecord[]> {
    const known = this.entries ?? this.readFile();
    const next = new Map<string, Entry>();
    let changed = false;
    const reread: string[] = [];
    const now = BigInt(Date.now()) * 1_000_000n;
    for (const id of ids) {
      const stamp = stampOf(this.recordFile(id), now);
      if (stamp === undefined) continue;
      const old = known.get(id);
      if (old && stamp !== '' && old.stamp === stamp) next.set(id, old);
      else reread.push(id);
    }
    // Stamp first, read second: a write between them leaves a stamp that no longer matches, read again next time.
    await Promise.all(reread.map(async (id) => {
      const stamp = stampOf(this.recordFile(id), BigInt(Date.now()) * 1_000_000n);
      const rec = await this.load(id);
      if (!rec || stamp === undefined) return;
      next.set(id, { stamp, record: listedOf(rec) });
      const old = known.get(id);
      if (!old || old.stamp !== stamp) changed = true;
    }));
    this.entries = next;
    if (changed || next.size !== known.size || [...next.keys()].some((id) => !known.has(id))) await this.writeFile(next);
    // Folders in readdir order: the caller sorts.
    return ids.map((id) => next.get(id)?.record).filter((r): r is ListedRecord => !!r);
  }

  /** Leftovers of listings killed while writing the catalog (their temp names say whose they were). */
  async sweep(entries: readonly string[]): Promise<void> {
    for (const name of entries) {
      if (!name.startsWith(`.tmp-${FILE}`)) continue;
      const owner = tempOwner(name);
      if (owner && ownerGone(owner)) await fsp.rm(path.join(this.dir, name), { force: true });
    }
  }

  private readFile(): Map<string, Entry> {
    try {
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as CatalogFile;
      if (parsed?.version !== VERSION || typeof parsed.entries !== 'object' || parsed.entries === null) return new Map();
      return new Map(Object.entries(parsed.entries).filter(([, e]) => typeof e?.stamp === 'string' && typeof e.record === 'object' && e.record !== null));
    } catch {
      // Missing, torn or hand-edited: the records rebuild it.
      return new Map();
    }
  }

  /**
   * A cache, so no fsync: after a power cut it may be empty or old, which the stamps catch. Concurrent
   * listings each rename a whole catalog into place; whichever lands is checked like any other.
   */
  private async writeFile(entries: Map<string, Entry>): Promise<void> {
    const body: CatalogFile = { version: VERSION, entries: Object.fromEntries(entries) };
    const tmp = path.join(this.dir, ownedTempName(`.tmp-${FILE}`));
    try {
      await fsp.writeFile(tmp, JSON.stringify(body), { mode: 0o600 });
      failpoint('container.catalog.before-rename');
      await fsp.rename(tmp, this.file);
    } catch {
      // A read-only or full store still lists: the catalog is only a saving.
      await fsp.rm(tmp, { force: true }).catch(() => {});
    }
  }
}

/** The record file's identity, "" when it changed too recently to trust, undefined when it is gone. */
function stampOf(file: string, nowNs: bigint): string | undefined {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  if (!st) return undefined;
  if (nowNs - st.mtimeNs < RACY_NS) return '';
  return `${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs}`;
}
