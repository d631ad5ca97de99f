import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BadStateError, CorruptError, InvalidArgumentError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import {
  buildImage, checkTree, dockerArchiveFiles, makeDockerArchive, makeOciArchive, makeOciLayout, mountsUnder, multiLayerTestImage,
  ociLayoutFiles, openTestImages, tarOf, withTempRoot, type ArchiveFile, type LayerSpec, type TempRoot, type TestImages,
} from '../fixtures/images.js';

const multi = multiLayerTestImage();
let work: TempRoot;
let t: TempRoot;
let storage: Storage;
let images: TestImages;

beforeAll(async () => { work = await withTempRoot('berth-img-work-'); });
afterAll(async () => work?.cleanup());
beforeEach(async () => {
  t = await withTempRoot();
  storage = openStorage(t.layout);
  images = openTestImages(t.layout, storage);
});
afterEach(async () => t?.cleanup());

const file = (name: string) => path.join(work.root, name);

/** Nothing of a failed or removed import may remain: no image, tag, layer, blob or lease. */
async function expectEmptyStore(): Promise<void> {
  expect(await images.list({ all: true })).toEqual([]);
  expect(await storage.layers.list()).toEqual([]);
  expect(await storage.blobs.list()).toEqual([]);
  expect(await fsp.readdir(path.join(t.layout.images, 'leases')).catch(() => [])).toEqual([]);
  expect(await fsp.readdir(path.join(t.layout.images, 'tags')).catch(() => [])).toEqual([]);
  expect((await fsp.readdir(t.layout.layers).catch(() => [])).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
}

async function expectMultiLayerContent(ref: string): Promise<void> {
  const root = await images.mount(ref);
  try {
    expect(await checkTree(root, multi.expect, multi.absent)).toEqual([]);
    expect((await fsp.readdir(path.join(root, 'opaque'))).sort()).toEqual(['c']);
    const [src, dst] = await Promise.all([fsp.stat(path.join(root, 'data/hl-src')), fsp.stat(path.join(root, 'data/hl-dst'))]);
    expect(dst.ino).toBe(src.ino);
    expect((await fsp.stat(path.join(root, 'data/dated'))).mtime.toISOString()).toBe(multi.mtimes['data/dated']!.toISOString());
  } finally {
    await images.unmount(ref);
  }
  expect(mountsUnder(t.root)).toEqual([]);
}

describe('load', () => {
  it('loads the multi-layer image from an OCI layout directory and mounts exactly its content', async () => {
    const dir = file('oci-dir');
    const img = await makeOciLayout(dir, multi.layers, { config: multi.config, tags: ['localhost/multi:1'] });
    expect(await images.load(dir)).toEqual({ loaded: ['localhost/multi:1'] });
    const rec = await images.resolve('multi:1');
    expect(rec.id).toBe(img.id);
    expect(rec.manifestDigest).toBe(img.manifestDigest);
    expect(rec.layers).toEqual(img.layers.map((l) => l.diffId));
    expect(rec.config.config).toEqual(multi.config);
    await expectMultiLayerContent('multi:1');
  });

  it.each([
    ['OCI tar', (f: string, l: LayerSpec[]) => makeOciArchive(f, l, { config: multi.config, tags: ['localhost/multi:1'] })],
    ['docker-archive with plain layers', (f: string, l: LayerSpec[]) => makeDockerArchive(f, l, { config: multi.config, tags: ['localhost/multi:1'], compression: 'none' })],
    ['docker-archive with gzip layers', (f: string, l: LayerSpec[]) => makeDockerArchive(f, l.map((x) => ({ ...x, compression: 'gzip' as const })), { config: multi.config, tags: ['localhost/multi:1'] })],
  ])('loads the multi-layer image from a %s', async (what, make) => {
    const f = file(`${what.replace(/\W+/g, '-')}.tar`);
    const img = await make(f, multi.layers);
    expect((await images.load(f)).loaded).toEqual(['localhost/multi:1']);
    expect((await images.resolve('multi:1')).id).toBe(img.id);
    await expectMultiLayerContent('multi:1');
  });

  it('loads from a stream, gzipped, with the manifest before the blobs', async () => {
    const img = await buildImage([{ entries: [{ type: 'file', path: 'a', content: 'a\n' }] }], { tags: ['s:1'] });
    const files = dockerArchiveFiles(img);
    const reordered = [...files.filter((f) => f.name === 'manifest.json'), ...files.filter((f) => f.name !== 'manifest.json')];
    const { gzipSync } = await import('node:zlib');
    const stream = new PassThrough();
    stream.end(gzipSync(await tarOf(reordered)));
    expect(await images.load(stream)).toEqual({ loaded: ['s:1'] });
    expect((await images.resolve('s:1')).id).toBe(img.id);
  });

  it('follows the symlinks docker save writes for a layer it already wrote', async () => {
    const layer: LayerSpec = { entries: [{ type: 'file', path: 'same', content: 'same\n' }] };
    const img = await buildImage([layer, layer], { tags: ['twice:1'] });
    const files = dockerArchiveFiles(img);
    const hex = img.layers[0]!.digest.slice(7);
    const manifest = JSON.parse(files.find((f) => f.name === 'manifest.json')!.data.toString());
    manifest[0].Layers = [`${hex}/layer.tar`, 'other/layer.tar'];
    const edited = files.filter((f, i) => !(f.name.endsWith('layer.tar') && i > 2)).map((f) => (f.name === 'manifest.json' ? { ...f, data: Buffer.from(JSON.stringify(manifest)) } : f));
    edited.splice(2, 0, { name: 'other/layer.tar', data: Buffer.alloc(0), symlink: `../${hex}/layer.tar` });
    await fsp.writeFile(file('twice.tar'), await tarOf(edited));
    expect(await images.load(file('twice.tar'))).toEqual({ loaded: ['twice:1'] });
    expect((await images.resolve('twice:1')).layers).toEqual([img.layers[0]!.diffId, img.layers[0]!.diffId]);
  });

  it('names an untagged image by its ID', async () => {
    const f = file('untagged.tar');
    const img = await makeOciArchive(f, [{ entries: [{ type: 'file', path: 'u', content: 'u\n' }] }]);
    expect(await images.load(f)).toEqual({ loaded: [img.id] });
    // Docker lists a dangling image (no tag, no child) without -a.
    expect((await images.list()).map((r) => r.repoTags)).toEqual([[]]);
    expect((await images.list({ all: true })).map((r) => r.repoTags)).toEqual([[]]);
    expect(await images.list({ filters: ['dangling=true'] })).toHaveLength(1);
    expect((await images.prune()).deleted).toEqual([img.id]);
    await expectEmptyStore();
  });

  it('lets two processes load the same archive at once', async () => {
    const f = file('concurrent-procs.tar');
    const img = await makeOciArchive(f, multi.layers.slice(0, 2), { tags: ['localhost/procs:1'] });
    const loader = path.resolve('test/fixtures/load-image.ts');
    const runs = [0, 1].map(() => execa('npx', ['vite-node', loader, t.root, t.runroot, f], { timeout: 120_000 }));
    for (const r of await Promise.all(runs)) expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toEqual(['localhost/procs:1']);
    expect((await images.resolve('procs:1')).id).toBe(img.id);
    await expectMultiLayerReadable('procs:1');
    await images.remove('procs:1');
    await expectEmptyStore();
  });

  it('lets two concurrent loads of the same archive both succeed', async () => {
    const f = file('concurrent.tar');
    const img = await makeDockerArchive(f, multi.layers.slice(0, 2), { tags: ['localhost/conc:1'] });
    const [a, b] = await Promise.all([images.load(f), images.load(createReadStream(f))]);
    expect(a.loaded).toEqual(['localhost/conc:1']);
    expect(b.loaded).toEqual(['localhost/conc:1']);
    expect((await images.resolve('conc:1')).id).toBe(img.id);
    expect((await storage.layers.list()).map((l) => l.diffId).sort()).toEqual(img.layers.map((l) => l.diffId).sort());
    await expectMultiLayerReadable('conc:1');
    await images.remove('conc:1');
    await expectEmptyStore();
  });
});

async function expectMultiLayerReadable(ref: string): Promise<void> {
  const root = await images.mount(ref);
  try {
    expect(await fsp.readFile(path.join(root, 'opaque/c'), 'utf8')).toBe('c2\n');
  } finally {
    await images.unmount(ref);
  }
}

describe('bad input leaves nothing behind', () => {
  const small: LayerSpec[] = [
    { entries: [{ type: 'file', path: 'one', content: '1\n' }] },
    { entries: [{ type: 'file', path: 'two', content: '2\n' }], compression: 'gzip' },
  ];
  const dropLast = (files: ArchiveFile[]) => {
    const layers = files.filter((f) => f.name.endsWith('layer.tar') || f.name.startsWith('blobs/'));
    return files.filter((f) => f !== layers[1]);
  };
  const tamper = (pick: (f: ArchiveFile) => boolean) => (files: ArchiveFile[]) =>
    files.map((f) => (pick(f) ? { ...f, data: Buffer.concat([f.data, Buffer.from('x')]) } : f));

  it.each([
    ['OCI layout missing a layer blob', () => makeOciArchive(file('bad1.tar'), small, { tags: ['bad:1'], mutate: dropLast }), 'bad1.tar', CorruptError, 'does not contain'],
    ['docker-archive missing a layer', () => makeDockerArchive(file('bad2.tar'), small, { tags: ['bad:1'], mutate: dropLast }), 'bad2.tar', CorruptError, 'does not contain'],
    ['OCI blob whose content does not match its name', async () => {
      const img = await buildImage(small);
      const target = `blobs/sha256/${img.layers[1]!.digest.slice(7)}`;
      await fsp.writeFile(file('bad3.tar'), await tarOf(ociLayoutFiles(img).map((f) => (f.name === target ? { ...f, data: Buffer.from(img.layers[0]!.blob) } : f))));
    }, 'bad3.tar', CorruptError, 'mismatch'],
    ['docker-archive layer that does not match the diff_ids', () => makeDockerArchive(file('bad4.tar'), small, { tags: ['bad:1'], mutate: tamper((f) => f.name.endsWith('layer.tar') && f.data[0] !== 0x1f) }), 'bad4.tar', CorruptError, ''],
    ['docker-archive config whose digest does not match its name', () => makeDockerArchive(file('bad5.tar'), small, { tags: ['bad:1'], mutate: tamper((f) => /^[0-9a-f]{64}\.json$/.test(f.name)) }), 'bad5.tar', CorruptError, 'mismatch'],
    ['truncated archive', async () => {
      await makeDockerArchive(file('bad6-full.tar'), small, { tags: ['bad:1'] });
      const full = await fsp.readFile(file('bad6-full.tar'));
      await fsp.writeFile(file('bad6.tar'), full.subarray(0, Math.floor(full.length * 0.6)));
    }, 'bad6.tar', CorruptError, ''],
    ['file that is not an archive', () => fsp.writeFile(file('bad7.tar'), Buffer.alloc(4096, 'not a tar archive at all ')), 'bad7.tar', InvalidArgumentError, 'not a tar archive'],
    ['empty file', () => fsp.writeFile(file('bad8.tar'), ''), 'bad8.tar', InvalidArgumentError, 'not an image archive'],
    ['tar without manifests', async () => fsp.writeFile(file('bad9.tar'), await tarOf([{ name: 'hello.txt', data: Buffer.from('hi') }])), 'bad9.tar', InvalidArgumentError, 'not an image archive'],
    ['manifest.json that is not JSON', () => makeDockerArchive(file('bad10.tar'), small, { mutate: (fs) => fs.map((f) => (f.name === 'manifest.json' ? { ...f, data: Buffer.from('[{') } : f)) }), 'bad10.tar', CorruptError, 'not valid JSON'],
    ['invalid RepoTags', () => makeDockerArchive(file('bad11.tar'), small, { tags: ['Bad:Tag'] }), 'bad11.tar', InvalidArgumentError, 'must be lowercase'],
    ['path that does not exist', async () => {}, 'nosuch.tar', InvalidArgumentError, 'does not exist'],
    ['docker-archive whose config has Cmd as a string', () => makeDockerArchive(file('bad12.tar'), small, { tags: ['bad:1'], config: { Cmd: 'echo x' } as never }), 'bad12.tar', CorruptError,
      'is not a valid image config: config.Cmd must be a list of strings, not a string ("echo x")'],
    ['OCI layout whose config has Env as an object', () => makeOciArchive(file('bad13.tar'), small, { tags: ['bad:1'], config: { Env: { A: '1' } } as never }), 'bad13.tar', CorruptError,
      'config.Env must be a list of strings'],
  ] as const)('%s', async (_what, make, name, cls, text) => {
    await make();
    const err = await images.load(file(name)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toContain(text);
    await expectEmptyStore();
  });

  it('keeps layers another image already uses when a load fails', async () => {
    const good = await makeDockerArchive(file('good.tar'), small.slice(0, 1), { tags: ['good:1'] });
    await images.load(file('good.tar'));
    await makeDockerArchive(file('half.tar'), small, { tags: ['half:1'], mutate: dropLast });
    await expect(images.load(file('half.tar'))).rejects.toBeInstanceOf(CorruptError);
    expect((await storage.layers.list()).map((l) => l.diffId)).toEqual([good.layers[0]!.diffId]);
    expect((await images.list()).map((r) => r.repoTags[0])).toEqual(['good:1']);
  });
});

describe('save', () => {
  it.each([
    ['docker-archive', 'saved-docker.tar'],
    ['oci-archive', 'saved-oci.tar'],
    ['oci-dir', 'saved-oci-dir'],
  ] as const)('round-trips the multi-layer image as %s with the same ID', async (format, out) => {
    const img = await makeOciArchive(file(`src-${format}.tar`), multi.layers, { config: multi.config, tags: ['localhost/multi:1'] });
    await images.load(file(`src-${format}.tar`));
    await images.tag('multi:1', 'localhost/multi:2');
    await images.save(['multi:1', 'localhost/multi:2'], file(out), { format });

    const other = await withTempRoot();
    try {
      const store2 = openTestImages(other.layout, openStorage(other.layout));
      expect((await store2.load(file(out))).loaded.sort()).toEqual(['localhost/multi:1', 'localhost/multi:2']);
      const rec = await store2.resolve('multi:2');
      expect(rec.id).toBe(img.id);
      expect(rec.config.config).toEqual(multi.config);
      const root = await store2.mount('multi:1');
      expect(await checkTree(root, multi.expect, multi.absent)).toEqual([]);
      await store2.unmount('multi:1');
    } finally {
      await other.cleanup();
    }
  });

  it('writes what docker load expects in a docker-archive', async () => {
    const img = await makeOciArchive(file('src-layout.tar'), [{ entries: [{ type: 'file', path: 'f', content: 'f' }] }], { tags: ['localhost/x:1'] });
    await images.load(file('src-layout.tar'));
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await images.save(['x:1'], out);
    const tar = await import('tar-stream');
    const ex = tar.extract();
    const names: Record<string, Buffer> = {};
    const done = (async () => {
      for await (const e of ex) {
        const parts: Buffer[] = [];
        for await (const c of e) parts.push(c as Buffer);
        names[e.header.name] = Buffer.concat(parts);
      }
    })();
    ex.end(Buffer.concat(chunks));
    await done;
    const manifest = JSON.parse(names['manifest.json']!.toString());
    expect(manifest).toEqual([{ Config: `${img.id.slice(7)}.json`, RepoTags: ['localhost/x:1'], Layers: [`${img.layers[0]!.digest.slice(7)}/layer.tar`] }]);
    expect(names[`${img.id.slice(7)}.json`]).toEqual(img.config);
    expect(JSON.parse(names.repositories!.toString())).toEqual({ 'localhost/x': { 1: img.layers[0]!.digest.slice(7) } });
  });
});

describe('save of layers kept as tar-split', () => {
  it.each(['docker-archive', 'oci-archive', 'oci-dir'] as const)('fails as %s with CorruptError naming the layer when a diff file changed, and writes nothing', async (format) => {
    await makeOciArchive(file(`tamper-${format}.tar`), [{ entries: [{ type: 'file', path: 'f', content: 'original' }] }], { tags: ['localhost/t:1'] });
    await images.load(file(`tamper-${format}.tar`));
    const [layer] = await storage.layers.list();
    await fsp.writeFile(path.join(layer!.diffPath, 'f'), 'tampered');
    const out = file(`tampered-${format}`);
    const err = await images.save(['t:1'], out, { format }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toContain(layer!.diffId);
    if (format !== 'oci-dir') expect(await fsp.readdir(work.root)).not.toContain(`tampered-${format}`);
  });
});

describe('remove and prune', () => {
  const base: LayerSpec = { entries: [{ type: 'file', path: 'base', content: 'base\n' }] };
  const top = (n: number): LayerSpec => ({ entries: [{ type: 'file', path: `top${n}`, content: `${n}\n` }] });

  it('frees a layer only when no other image uses it', async () => {
    const a = await makeDockerArchive(file('a.tar'), [base, top(1)], { tags: ['a:1'] });
    const b = await makeDockerArchive(file('b.tar'), [base, top(2)], { tags: ['b:1'] });
    await images.load(file('a.tar'));
    await images.load(file('b.tar'));
    const diffIds = async () => (await storage.layers.list()).map((l) => l.diffId).sort();
    expect(await diffIds()).toEqual([a.layers[0]!.diffId, a.layers[1]!.diffId, b.layers[1]!.diffId].sort());

    await images.tag('a:1', 'a:2');
    expect(await images.remove('a:1')).toEqual([{ untagged: 'a:1' }]);
    expect(await diffIds()).toHaveLength(3);
    expect(await images.remove('a:2')).toEqual([{ untagged: 'a:2' }, { deleted: a.id }]);
    expect(await diffIds()).toEqual([b.layers[0]!.diffId, b.layers[1]!.diffId].sort());
    expect(await storage.blobs.has(a.layers[1]!.digest)).toBe(false);
    expect(await storage.blobs.has(a.layers[0]!.digest)).toBe(true);

    await images.remove(b.id.slice(7, 19));
    await expectEmptyStore();
  });

  it('refuses to remove an image a container uses, with Docker\'s wording, unless forced', async () => {
    const img = await makeDockerArchive(file('used.tar'), [base, top(3)], { tags: ['used:1'] });
    await images.load(file('used.tar'));
    const ctr = 'c'.repeat(64);
    await storage.snapshots.prepare(ctr, { image: img.id, layers: img.layers.map((l) => l.diffId) as Digest[] }, { owner: 'container' });
    try {
      const err = await images.remove('used:1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadStateError);
      expect((err as Error).message).toBe(`conflict: unable to remove repository reference "used:1" (must force) - container cccccccccccc is using its referenced image ${img.id.slice(7, 19)}`);
      await expect(images.remove(img.id)).rejects.toThrow(/unable to delete .* image is being used by container cccccccccccc/);
      expect((await images.prune({ all: true })).deleted).toEqual([]);

      expect(await images.remove('used:1', { force: true })).toEqual([{ untagged: 'used:1' }, { deleted: img.id }]);
      expect((await storage.layers.list()).map((l) => l.diffId).sort()).toEqual(img.layers.map((l) => l.diffId).sort());
    } finally {
      await storage.snapshots.remove(ctr);
    }
    await images.prune();
    await expectEmptyStore();
  });

  it('needs force to remove by ID an image with several tags', async () => {
    const img = await makeDockerArchive(file('multi-tag.tar'), [base], { tags: ['m:1', 'm:2'] });
    await images.load(file('multi-tag.tar'));
    await expect(images.remove(img.id)).rejects.toThrow('image is referenced in multiple repositories');
    expect(await images.remove(img.id, { force: true })).toEqual([{ untagged: 'm:1' }, { untagged: 'm:2' }, { deleted: img.id }]);
    await expectEmptyStore();
  });

  it('filters the list by reference and dangling, and prunes all unused images', async () => {
    await makeDockerArchive(file('f1.tar'), [top(4)], { tags: ['team/app:1', 'team/app:2'] });
    await makeDockerArchive(file('f2.tar'), [top(5)], { tags: ['other:1'] });
    await images.load(file('f1.tar'));
    await images.load(file('f2.tar'));
    expect((await images.list()).map((r) => r.repoTags[0]).sort()).toEqual(['other:1', 'team/app:1', 'team/app:2']);
    expect((await images.list({ filters: ['reference=team/*:1'] })).map((r) => r.repoTags[0])).toEqual(['team/app:1']);
    expect((await images.list({ filters: ['reference=other'] })).map((r) => r.repoTags[0])).toEqual(['other:1']);
    expect(await images.list({ filters: ['dangling=true'] })).toEqual([]);
    await expect(images.list({ filters: ['colour=x'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await images.prune()).toEqual({ deleted: [], spaceReclaimed: 0 });
    const pruned = await images.prune({ all: true });
    expect(pruned.deleted).toHaveLength(2);
    expect(pruned.spaceReclaimed).toBeGreaterThan(0);
    await expectEmptyStore();
  });
});

describe('import', () => {
  it('makes a one-layer image from a rootfs tarball with Dockerfile-style changes', async () => {
    const img = await buildImage([{ entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/motd', content: 'hello\n' }] }]);
    await fsp.writeFile(file('rootfs.tar'), img.layers[0]!.tar);
    const id = await images.import(file('rootfs.tar'), {
      reference: 'localhost/imported:v1',
      changes: ['CMD ["cat", "/etc/motd"]', 'ENV A=1', 'WORKDIR /etc', 'EXPOSE 8080', 'LABEL k=v', 'USER nobody', 'STOPSIGNAL SIGINT', 'VOLUME /data', 'ENTRYPOINT ["/bin/sh", "-c"]'],
      message: 'from a test',
    });
    const rec = await images.resolve('imported:v1');
    expect(rec.id).toBe(id);
    expect(rec.layers).toEqual([img.layers[0]!.diffId]);
    expect(rec.config.config).toEqual({
      Cmd: ['cat', '/etc/motd'], Entrypoint: ['/bin/sh', '-c'], Env: ['A=1'], WorkingDir: '/etc', ExposedPorts: { '8080/tcp': {} },
      Labels: { k: 'v' }, User: 'nobody', StopSignal: 'SIGINT', Volumes: { '/data': {} },
    });
    expect((await images.history(id))[0]).toMatchObject({ id, comment: 'from a test' });
    const root = await images.mount(id);
    try {
      expect(await fsp.readFile(path.join(root, 'etc/motd'), 'utf8')).toBe('hello\n');
    } finally {
      await images.unmount(id);
    }
  });

  it('refuses bad changes before storing anything', async () => {
    await fsp.writeFile(file('rootfs2.tar'), (await buildImage([{ entries: [{ type: 'file', path: 'x', content: 'x' }] }])).layers[0]!.tar);
    await expect(images.import(file('rootfs2.tar'), { changes: ['RUN rm -rf /'] })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(images.import(file('rootfs2.tar'), { reference: 'UPPER' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expectEmptyStore();
  });
});
