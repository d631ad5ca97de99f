import { afterEach, expect, test } from 'vitest';
import { destroyStore, makeStore, makeTar, gzip, streamOf, diffIdOf, type TestStore } from './helpers.js';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

let store: TestStore | undefined;
afterEach(async () => destroyStore(store));

test('smoke', async () => {
  store = await makeStore();
  const t = await makeTar([
    { name: 'etc/', mode: 0o755 },
    { name: 'etc/passwd', data: 'root:x:0:0\n', mode: 0o644, uid: 5, gid: 6 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
    { name: 'bin/busybox', data: 'BB', mode: 0o4755 },
    { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'old/.wh.gone', data: '' },
    { name: 'opq/.wh..wh..opq', data: '' },
    { name: 'x', data: 'hi', pax: { 'SCHILY.xattr.user.test': 'value' } },
  ]);
  const info = await store.storage.layers.unpack(streamOf(gzip(t)));
  console.log(info);
  expect(info.diffId).toBe(diffIdOf(t));
  const { run } = await import('../../src/util/exec.js');
  console.log((await run('ls', ['-laR', '--time-style=full-iso', info.diffPath])).stdout);
  console.log((await run('getfattr', ['-R', '-d', '-m', '-', info.diffPath])).stdout);
});
