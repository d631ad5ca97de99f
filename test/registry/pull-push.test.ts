/**
 * pull and push against a real docker-registry on 127.0.0.1 (ports 15200–15209), into and out of
 * engines on fresh roots: digests equal both ways, images that run, indexes, tags, kills.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { pushImage as pushByHand, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ociArchitecture } from '../../src/image/oci.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const ARCH = ociArchitecture();
const OTHER_ARCH = ARCH === 'amd64' ? 'arm64' : 'amd64';

let reg: TestRegistry;
let slot = 3400;
const engines: TestEngine[] = [];

async function engine(): Promise<TestEngine> {
  const t = await testEngine(slot++);
  engines.push(t);
  return t;
}

/** The registry's own word on a manifest: its digest and media type (HEAD with every accepted type). */
async function registryDigest(repo: string, ref: string): Promise<string | undefined> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json' },
  });
  return res.status === 200 ? res.headers.get('docker-content-digest') ?? undefined : undefined;
}

async function putManifest(repo: string, ref: string, mediaType: string, body: Buffer): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': mediaType }, body });
  expect(res.status, await res.text()).toBe(201);
}

/** Blobs in the store, real or virtual (uncompressed layers rebuilt from their layer). */
function storedBlobs(root: string): string[] {
  return ['sha256', 'virtual'].flatMap((d) => (existsSync(path.join(root, 'blobs', d)) ? readdirSync(path.join(root, 'blobs', d)) : [])).filter((n) => /^[0-9a-f]{64}$/.test(n));
}

beforeAll(async () => {
  reg = await startRegistry({ port: 15200 });
});

afterAll(async () => {
  await reg?.stop();
});

afterEach(async () => {
  for (const t of engines.splice(0)) await cleanupAll(t);
});

describe('push and pull round trips', () => {
  it('pushes the embedded busybox, pulls it into a fresh root with the same digest and ID, and runs it', async () => {
    const a = await engine();
    const id = await a.engine.images.ensureDefault();
    const name = `${reg.host}/berth/busybox`;
    await a.ok('tag', 'busybox', name);
    const pushed = await a.cli('push', name);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const digest = await registryDigest('berth/busybox', 'latest');
    expect(pushed.stdout.split('\n')).toEqual([
      `The push refers to repository [${name}]`,
      expect.stringMatching(/^[0-9a-f]{12}: Preparing$/),
      expect.stringMatching(/^[0-9a-f]{12}: Pushing$/),
      expect.stringMatching(/^[0-9a-f]{12}: Pushed$/),
      expect.stringMatching(new RegExp(`^latest: digest: ${digest} size: \\d+$`)),
    ]);
    // Docker gives a pushed image its RepoDigest.
    expect((await a.engine.images.inspect(name)).RepoDigests).toEqual([`${name}@${digest}`]);

    const b = await engine();
    const pulled = await b.cli('pull', name);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    const lines = pulled.stdout.split('\n');
    expect(lines[0]).toBe('Using default tag: latest');
    expect(lines[1]).toBe('latest: Pulling from berth/busybox');
    expect(lines).toContain(`Digest: ${digest}`);
    expect(lines.some((l) => /^[0-9a-f]{12}: Pull complete$/.test(l))).toBe(true);
    expect(lines.at(-2)).toBe(`Status: Downloaded newer image for ${name}:latest`);
    expect(lines.at(-1)).toBe(`${name}:latest`);
    const inspect = await b.engine.images.inspect(name);
    expect(inspect.Id).toBe(id);
    expect(inspect.RepoDigests).toEqual([`${name}@${digest}`]);
    expect(await b.ok('run', '--rm', '--network', 'none', name, 'echo', 'hello from the registry')).toBe('hello from the registry');

    // Pulled again: nothing fetched, the status says so.
    const again = await b.ok('pull', name);
    expect(again).toContain(`Status: Image is up to date for ${name}:latest`);
    expect(again).not.toContain('Pull complete');

    // images --digests: the DIGEST column (Docker's layout), and the same digest pushing it back.
    const table = (await b.ok('images', '--digests', '--format', '{{.Repository}} {{.Tag}} {{.Digest}}')).split('\n');
    expect(table).toContain(`${name} latest ${digest}`);
    await b.ok('tag', name, `${name}:again`);
    const back = await b.engine.images.push(`${name}:again`);
    expect(back.digest).toBe(digest);
  });

  it('round-trips a committed multi-layer image with a whiteout, uncompressed layers pushed as stored', async () => {
    const a = await engine();
    await a.engine.images.ensureDefault();
    await a.ok('run', '--name', 'c1', '--network', 'none', 'busybox', 'sh', '-c', 'rm /etc/group && mkdir /d && echo layered > /d/f');
    const name = `${reg.host}/berth/layered:v1`;
    await a.ok('commit', 'c1', name);
    await a.ok('rm', 'c1');
    const res = await a.engine.images.push(name);
    expect(res.digest).toBe(await registryDigest('berth/layered', 'v1'));
    const manifest = JSON.parse(readFileSync(path.join(a.root, 'blobs', 'sha256', res.digest.slice(7))).toString()) as { layers: { mediaType: string }[] };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar']);

    const b = await engine();
    const pulled = await b.engine.images.pull(name);
    expect(pulled).toMatchObject({ reference: name, digest: res.digest, id: (await a.engine.images.inspect(name)).Id, changed: true });
    expect(await b.ok('run', '--rm', '--network', 'none', name, 'sh', '-c', 'cat /d/f; test -e /etc/group || echo whiteout kept; test -e /etc/passwd && echo passwd kept'))
      .toBe('layered\nwhiteout kept\npasswd kept');
  });

  it('pulls gzipped layers with whiteouts made elsewhere, and pushes them back by mounting', async () => {
    const made = await pushByHand(reg, 'other/gz', 'v1', {
      format: 'docker', architecture: ARCH,
      layers: [{ 'a.txt': 'a\n', 'dir/b.txt': 'b\n' }, { '.wh.a.txt': '', 'c.txt': 'c\n' }],
    });
    const t = await engine();
    const events: string[] = [];
    for await (const e of t.engine.images.pullEvents(`${reg.host}/other/gz:v1`)) events.push(e.type === 'layer' ? `${e.id}:${e.status}` : e.type);
    expect(events[0]).toBe('resolving');
    expect(events.at(-1)).toBe('done');
    for (const d of made.layerDigests) expect(events).toContain(`${d.slice(7, 19)}:complete`);
    const mnt = await t.engine.images.mount(`${reg.host}/other/gz:v1`);
    try {
      expect(readFileSync(path.join(mnt, 'c.txt'), 'utf8')).toBe('c\n');
      expect(readFileSync(path.join(mnt, 'dir/b.txt'), 'utf8')).toBe('b\n');
      expect(existsSync(path.join(mnt, 'a.txt'))).toBe(false);
    } finally {
      await t.engine.images.unmount(`${reg.host}/other/gz:v1`);
    }
    const seen: string[] = [];
    await t.engine.images.tag(`${reg.host}/other/gz:v1`, `${reg.host}/other/copy:v1`);
    const res = await t.engine.images.push(`${reg.host}/other/copy:v1`, {
      onProgress: (e) => { if (e.type === 'layer') seen.push(e.status === 'mounted' ? `mounted from ${e.from}` : e.status); },
    });
    expect(res.digest).toBe(made.manifestDigest);
    expect(seen.filter((s) => s.startsWith('mounted'))).toEqual(['mounted from other/gz', 'mounted from other/gz']);
  });
});

describe('an image known locally, then pulled', () => {
  it('keeps the pulled manifest and its gzipped blobs with the RepoDigest, so pushing it gives the same digest; save/load agree on the ID', async () => {
    const made = await pushByHand(reg, 'known/gz', 'v1', { format: 'docker', architecture: ARCH, layers: [{ 'x.txt': 'x\n' }, { 'y.txt': 'y\n' }] });
    const name = `${reg.host}/known/gz:v1`;
    const a = await engine();
    await a.engine.images.pull(name);
    const archive = path.join(a.root, 'saved.tar');
    await a.ok('save', '-o', archive, name);

    // Loaded from an archive first (uncompressed layers, a manifest of its own), pulled after.
    const b = await engine();
    await b.ok('load', '-i', archive);
    const loaded = await b.engine.images.inspect(name);
    expect(loaded.Id).toBe(made.configDigest);
    expect(loaded.RepoDigests).toEqual([]);
    const res = await b.engine.images.pull(name);
    expect(res).toMatchObject({ id: made.configDigest, digest: made.manifestDigest });
    expect((await b.engine.images.inspect(name)).RepoDigests).toEqual([`${reg.host}/known/gz@${made.manifestDigest}`]);
    // A prune (which collects every blob no record names) must keep the RepoDigest's.
    await b.ok('image', 'prune', '-f');
    await b.ok('tag', name, `${reg.host}/known/copy:v1`);
    const pushed = await b.engine.images.push(`${reg.host}/known/copy:v1`);
    expect(pushed.digest).toBe(made.manifestDigest);
  });
});

describe('what pull picks', () => {
  it("picks this machine's platform from an index, another with --platform, and lists them when none fits", async () => {
    const mine = await pushByHand(reg, 'multi/app', 'mine', { architecture: ARCH, layers: [{ 'arch.txt': `${ARCH}\n` }] });
    const other = await pushByHand(reg, 'multi/app', 'other', { architecture: OTHER_ARCH, layers: [{ 'arch.txt': `${OTHER_ARCH}\n` }] });
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: other.manifestDigest, size: other.manifest.length, platform: { os: 'linux', architecture: OTHER_ARCH, ...(OTHER_ARCH === 'arm64' ? { variant: 'v8' } : {}) } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: mine.manifestDigest, size: mine.manifest.length, platform: { os: 'linux', architecture: ARCH } },
      ],
    }));
    await putManifest('multi/app', 'latest', 'application/vnd.oci.image.index.v1+json', index);
    const name = `${reg.host}/multi/app`;

    const t = await engine();
    const out = await t.ok('pull', name);
    // Docker shows the index's digest: what the registry knows the image by.
    expect(out).toContain(`Digest: ${sha256(index)}`);
    const img = await t.engine.images.inspect(name);
    expect(img.Id).toBe(mine.configDigest);
    expect(img.RepoDigests).toEqual([`${name}@${sha256(index)}`]);

    const u = await engine();
    await u.ok('pull', '--platform', `linux/${OTHER_ARCH}`, name);
    expect((await u.engine.images.inspect(name)).Id).toBe(other.configDigest);

    const bad = await u.cli('pull', '--platform', 'linux/s390x', name);
    expect(bad.exitCode).toBe(125);
    expect(bad.stderr).toContain(`${name}:latest: no image for platform linux/s390x in the index (it offers linux/${OTHER_ARCH}`);
    expect(bad.stderr).toContain(`(registry ${reg.host})`);
  });

  it('pulls by digest (stored untagged, found by name@digest) and every tag with --all-tags', async () => {
    const v1 = await pushByHand(reg, 'tags/app', 'v1', { architecture: ARCH, layers: [{ 'v.txt': '1\n' }] });
    const v2 = await pushByHand(reg, 'tags/app', 'v2', { architecture: ARCH, layers: [{ 'v.txt': '2\n' }] });
    const name = `${reg.host}/tags/app`;
    const t = await engine();
    const out = (await t.ok('pull', `${name}@${v1.manifestDigest}`)).split('\n');
    expect(out[0]).toBe(`${v1.manifestDigest}: Pulling from tags/app`);
    expect(out.at(-1)).toBe(`${name}@${v1.manifestDigest}`);
    expect((await t.engine.images.inspect(`${name}@${v1.manifestDigest}`)).Id).toBe(v1.configDigest);
    expect((await t.engine.images.inspect(v1.configDigest)).RepoTags).toEqual([]);

    const all = await t.cli('pull', '--all-tags', name);
    expect(all.exitCode, all.stderr).toBe(0);
    expect(all.stdout.split('\n').at(-1)).toBe(name);
    expect((await t.engine.images.inspect(`${name}:v1`)).Id).toBe(v1.configDigest);
    expect((await t.engine.images.inspect(`${name}:v2`)).Id).toBe(v2.configDigest);
    // -q: the reference alone.
    expect(await t.ok('pull', '-q', `${name}:v2`)).toBe(`${name}:v2`);
  });

  it('refuses an unknown tag or repository with exit 125, storing nothing', async () => {
    await pushByHand(reg, 'known/app', 'v1', { architecture: ARCH });
    const t = await engine();
    for (const ref of [`${reg.host}/known/app:nope`, `${reg.host}/unknown/app`]) {
      const res = await t.cli('pull', ref);
      expect(res.exitCode).toBe(125);
      expect(res.stderr).toMatch(new RegExp(`^Error: ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:latest)?: .*\\(registry ${reg.host}\\)`));
    }
    expect(await t.ok('images', '-aq')).toBe('');
    expect(storedBlobs(t.root)).toEqual([]);
  });
});

describe('interrupted pulls and run', () => {
  it('a pull killed between layers leaves no image; the next pull completes, reusing the layers it finished', async () => {
    const made = await pushByHand(reg, 'kill/app', 'v1', { architecture: ARCH, layers: [{ '1': '1' }, { '2': '2' }, { '3': '3' }, { '4': '4' }] });
    const t = await engine();
    const name = `${reg.host}/kill/app:v1`;
    const killed = await execa(path.resolve('bin/berth.js'), ['--root', t.root, '--runroot', t.runroot, 'pull', name],
      { reject: false, timeout: 60_000, env: { BERTH_FAILPOINT: 'registry.pull.mid-layers' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(await t.ok('images', '-aq')).toBe('');
    const kept = made.layerDigests.filter((d) => storedBlobs(t.root).includes(d.slice(7)));
    expect(kept.length).toBeGreaterThan(0);
    const again = await t.ok('pull', name);
    for (const d of kept) expect(again).toContain(`${d.slice(7, 19)}: Already exists`);
    expect((await t.engine.images.inspect(name)).Id).toBe(made.configDigest);
  });

  it('run pulls a missing image and says so; --pull never refuses with "No such image"', async () => {
    const a = await engine();
    await a.engine.images.ensureDefault();
    const name = `${reg.host}/run/busybox:latest`;
    await a.ok('tag', 'busybox', name);
    await a.engine.images.push(name);

    const b = await engine();
    const never = await b.cli('run', '--rm', '--pull', 'never', '--network', 'none', name, 'true');
    expect(never.exitCode).toBe(125);
    expect(never.stderr).toMatch(/no such image/i);
    expect(await b.ok('images', '-aq')).toBe('');

    const res = await b.cli('run', '--rm', '--network', 'none', name, 'echo', 'pulled and ran');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe('pulled and ran');
    expect(res.stderr.split('\n')[0]).toBe(`Unable to find image '${name}' locally`);
    expect(res.stderr).toContain('Status: Downloaded newer image for');

    // Present now: no pull, nothing on stderr about one.
    const second = await b.cli('run', '--rm', '--network', 'none', name, 'true');
    expect(second.stderr).not.toContain('Unable to find image');

    const bad = await b.cli('create', '--pull', 'sometimes', name);
    expect(bad.exitCode).toBe(125);
  });
});
