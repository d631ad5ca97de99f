import { promises as fsp } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { packFile } from '../util/tar.js';
import type { ContextEntry } from './index.js';

/**
 * One thing a COPY writes: a resolved source entry, a heredoc's body (`COPY <<EOF /dest`), or a folder on
 * the way to the destination with its own owner, mode and time (neither --chown nor --chmod touch it).
 */
export type PackItem =
  | { name: string; entry: ContextEntry }
  | { name: string; content: string }
  | { name: string; folder: PackFolder };

export interface PackFolder {
  uid: number;
  gid: number;
  mode: number;
  mtime: Date;
  /** as packTree writes them (storage/changes.ts): SCHILY.xattr records */
  xattrs?: Record<string, Buffer>;
}

export interface PackOwner {
  uid: number;
  gid: number;
}

/**
 * The items as a tar stream, each under its `name` (relative, `/`-separated), owned by `owner`, with `mode`
 * (COPY --chmod) for every entry when given. Names come from the resolver's `target`, so a source directory's
 * contents land under the destination and a file may be renamed, without a `tar --transform` per entry.
 */
export function packItems(items: readonly PackItem[], owner: PackOwner, mode: number | undefined): Readable {
  const pack = tar.pack();
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  pack.pipe(out);
  type Header = Parameters<typeof pack.entry>[0];
  const entry = (header: Header, body?: Buffer) => new Promise<void>((resolve, reject) => {
    pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
  });
  (async () => {
    for (const item of items) {
      const base = { uid: owner.uid, gid: owner.gid };
      if ('content' in item) {
        const body = Buffer.from(item.content, 'utf8');
        await entry({ name: item.name, type: 'file', size: body.length, mode: mode ?? 0o644, mtime: new Date(), ...base }, body);
        continue;
      }
      if ('folder' in item) {
        const { xattrs, ...meta } = item.folder;
        const pax = Object.fromEntries(Object.entries(xattrs ?? {}).map(([k, v]) => [`SCHILY.xattr.${k}`, v.toString('latin1')]));
        await entry({ ...meta, name: `${item.name}/`, type: 'directory', ...(Object.keys(pax).length ? { pax } : {}) });
        continue;
      }
      const e = item.entry;
      // The walk's stat, when it has one: a second lstat per file cost more than the pack itself.
      const st = e.mtime ? { mtime: e.mtime, size: e.size } : await fsp.lstat(e.hostPath);
      const header = { name: item.name, mode: mode ?? e.mode, mtime: st.mtime, ...base };
      if (e.type === 'directory') {
        await entry({ ...header, name: `${item.name}/`, type: 'directory' });
      } else if (e.type === 'symlink') {
        await entry({ ...header, type: 'symlink', linkname: e.linkname ?? (await fsp.readlink(e.hostPath)) });
      } else {
        await packFile(pack, { ...header, size: st.size }, e.hostPath);
      }
    }
    pack.finalize();
  })().catch((err: unknown) => {
    out.destroy(err as Error);
    pack.destroy();
  });
  return out;
}
