import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { resolveLayout, type StoreLayout } from '../../src/paths.js';
import type { Digest } from '../../src/ids.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { run } from '../../src/util/exec.js';

export interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** A tar archive built in-process, as a registry or `docker save` would hand it over. */
export async function makeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date('2020-01-02T03:04:05Z'),
      linkname: e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      pax: e.pax,
    };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') pack.entry(header, e.data ?? '', (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const gzip = (buf: Buffer) => gzipSync(buf);
export const diffIdOf = (tarBytes: Buffer) => `sha256:${createHash('sha256').update(tarBytes).digest('hex')}` as Digest;

/** Streams a buffer in small pieces so entries straddle chunk boundaries. */
export function streamOf(buf: Buffer, chunk = 7_919): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts, { objectMode: false });
}

export interface TestStore {
  dir: string;
  layout: StoreLayout;
  storage: Storage;
}

export async function makeStore(): Promise<TestStore> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-storage-'));
  const layout = resolveLayout({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run') });
  return { dir, layout, storage: openStorage(layout) };
}

/** Unmounts every snapshot, then deletes the whole temp folder. */
export async function destroyStore(store: TestStore | undefined): Promise<void> {
  if (!store) return;
  for (const snap of await store.storage.snapshots.list().catch(() => [])) await store.storage.snapshots.unmount(snap.key).catch(() => {});
  for (const mount of await leftoverMounts(store.dir)) await run('umount', ['-l', mount]);
  await fsp.rm(store.dir, { recursive: true, force: true });
}

export async function leftoverMounts(dir: string): Promise<string[]> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(dir + '/')).reverse();
}
