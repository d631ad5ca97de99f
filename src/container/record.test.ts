import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { newContainerId } from '../ids.js';
import { resolveLayout } from '../paths.js';
import { RecordStore, type ContainerRecord } from './record.js';

let dir: string;
let store: RecordStore;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-rec-'));
  store = new RecordStore(resolveLayout({ root: dir, runroot: path.join(dir, 'run') }));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const record = (id: string, name: string) => ({ version: 2, id, name, created: new Date().toISOString() }) as ContainerRecord;

describe('RecordStore', () => {
  it('resolves by full id, name and unique prefix', async () => {
    const id = newContainerId();
    await store.save(record(id, 'web'));
    await store.reserveName('web', id);
    expect((await store.resolve(id)).name).toBe('web');
    expect((await store.resolve('web')).id).toBe(id);
    expect((await store.resolve('/web')).id).toBe(id);
    expect((await store.resolve(id.slice(0, 5))).id).toBe(id);
    await expect(store.resolve('nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses an ambiguous prefix', async () => {
    const a = ('ab' + newContainerId().slice(2));
    const b = ('ab' + newContainerId().slice(2));
    await store.save(record(a, 'a'));
    await store.save(record(b, 'b'));
    await expect(store.resolve('ab')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('gives a name to one container only, even when asked at once', async () => {
    const ids = Array.from({ length: 8 }, () => newContainerId());
    const results = await Promise.allSettled(ids.map(async (id) => {
      await store.save(record(id, 'same'));
      await store.reserveName('same', id);
    }));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.every((r) => r.reason instanceof AlreadyExistsError)).toBe(true);
  });

  it('frees a name whose record never got written (crashed create)', async () => {
    await store.reserveName('ghost', newContainerId());
    await expect(store.reserveName('ghost', newContainerId())).resolves.toBeUndefined();
  });

  it('refuses invalid names', async () => {
    await expect(store.reserveName('-bad', newContainerId())).rejects.toThrow(/--name/);
  });
});
