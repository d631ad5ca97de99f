import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../ids.js';
import { Lease } from './gc.js';
import type { ImageRecords } from './records.js';

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}` as Digest;

describe('Lease', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(tmpdir(), 'berth-lease-')); });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('keeps every blob and layer added at once: a later save never renames an older list over a newer one', async () => {
    const lease = await Lease.open({ dir } as ImageRecords);
    // A load stores several blobs side by side; each add saves the whole list.
    await Promise.all(Array.from({ length: 40 }, (_v, i) => (i % 2 ? lease.addLayer(digest(i)) : lease.addBlob(digest(i)))));
    const [file] = await readdir(path.join(dir, 'leases'));
    const saved = JSON.parse(await readFile(path.join(dir, 'leases', file!), 'utf8')) as { blobs: Digest[]; layers: Digest[] };
    expect(saved.blobs.length + saved.layers.length).toBe(40);
    expect([...saved.blobs, ...saved.layers].sort()).toEqual(Array.from({ length: 40 }, (_v, i) => digest(i)).sort());
    await lease.release();
    expect(await readdir(path.join(dir, 'leases'))).toEqual([]);
  });
});
