import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { openStore, STORE_VERSION } from '../../src/store.js';
import { destroyStore, makeStore, makeTar, streamOf, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => destroyStore(store));

/** Whether ext4's top-folder flag (chattr +T) is set on `dir`, or undefined where lsattr cannot tell (not ext4). */
function topDirFlag(dir: string): boolean | undefined {
  try {
    const flags = execFileSync('lsattr', ['-d', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(' ')[0]!;
    return flags.includes('T');
  } catch {
    return undefined;
  }
}

const onExt4 = execFileSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).trim() === 'ext2/ext3';

describe.runIf(onExt4)('folders of unrelated trees carry the top-folder flag (chattr +T)', () => {
  test('the layer store and the snapshot store set it when they make their folders', async () => {
    const tar = await makeTar([{ name: 'a/' }, { name: 'a/f', data: 'x' }]);
    const layer = await store.storage.layers.unpack(streamOf(tar));
    expect(topDirFlag(store.layout.layers)).toBe(true);
    await store.storage.snapshots.prepare('c1', { image: 'sha256:img', layers: [layer.diffId] }, { owner: 'container' });
    expect(topDirFlag(store.layout.snapshots)).toBe(true);
    // A layer's own folder is an ordinary one: only the store's folders are flagged.
    expect(topDirFlag(path.join(store.layout.layers, (await fsp.readdir(store.layout.layers)).find((n) => /^[0-9a-f]{64}$/.test(n))!))).toBe(false);
  });

  test('a store of the previous version gets it when opened, and records the new version', async () => {
    for (const d of [store.layout.layers, store.layout.snapshots]) await fsp.mkdir(d, { recursive: true });
    await fsp.writeFile(path.join(store.layout.root, 'store.json'), JSON.stringify({ version: 2 }));
    expect(topDirFlag(store.layout.layers)).toBe(false);
    expect(await openStore(store.layout)).toBe(true);
    expect(topDirFlag(store.layout.layers)).toBe(true);
    expect(topDirFlag(store.layout.snapshots)).toBe(true);
    expect(JSON.parse(await fsp.readFile(path.join(store.layout.root, 'store.json'), 'utf8'))).toEqual({ version: STORE_VERSION });
  });
});
