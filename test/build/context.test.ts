import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { openContext } from '../../src/build/context.js';
import type { BuildContext, ContextEntry } from '../../src/build/index.js';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';

let tmp: string;
let dir: string;
let tempParent: string;
const opened: BuildContext[] = [];

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ctx-test-'));
  dir = path.join(tmp, 'ctx');
  tempParent = path.join(tmp, 'engine-tmp');
  fs.mkdirSync(dir);
  fs.mkdirSync(tempParent);
});

afterEach(async () => {
  for (const c of opened.splice(0)) await c.close();
  // Every tar context, good or refused, must leave the temp parent as it found it.
  expect(fs.readdirSync(tempParent)).toEqual([]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(files: Record<string, string | { link: string } | { mode: number; text: string }>, root = dir): void {
  for (const [name, v] of Object.entries(files)) {
    const p = path.join(root, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof v === 'string') {
      if (name.endsWith('/')) fs.mkdirSync(p, { recursive: true });
      else fs.writeFileSync(p, v);
    } else if ('link' in v) fs.symlinkSync(v.link, p);
    else {
      fs.writeFileSync(p, v.text);
      fs.chmodSync(p, v.mode);
    }
  }
}

async function open(src: string | Readable = dir, opts: Parameters<typeof openContext>[1] = {}): Promise<BuildContext> {
  const c = await openContext(src, { tempParent, ...opts });
  opened.push(c);
  return c;
}

const targets = (es: ContextEntry[]) => es.map((e) => `${e.target}${e.type === 'directory' ? '/' : e.type === 'symlink' ? `@${e.linkname}` : ''}`);

type TarEntry = { name: string; type?: tar.Header['type']; linkname?: string; text?: string; mode?: number };
async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? 0o644 }, e.text ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('a directory context', () => {
  test('is used in place; files, directories and globs resolve to entries in lexical order', async () => {
    write({ 'Dockerfile': 'FROM scratch\n', 'a.txt': 'a', 'b.txt': 'b', 'src/x.ts': 'x', 'src/y/z.ts': 'z', 'src/y/w.js': 'w', 'README.md': 'r' });
    const c = await open();
    expect(c.root).toBe(fs.realpathSync(dir));
    expect(targets(await c.resolve('a.txt'))).toEqual(['a.txt']);
    expect(targets(await c.resolve('/src'))).toEqual(['/', 'x.ts', 'y/', 'y/w.js', 'y/z.ts']);
    expect(targets(await c.resolve('*.txt'))).toEqual(['a.txt', 'b.txt']);
    expect(targets(await c.resolve('src/*/z.?s'))).toEqual(['z.ts']);
    // a matching directory comes whole, its contents at the destination
    expect(targets(await c.resolve('s[q-s]c'))).toEqual(['/', 'x.ts', 'y/', 'y/w.js', 'y/z.ts']);
    const [file] = await c.resolve('./src/../a.txt');
    expect(file).toMatchObject({ path: 'a.txt', type: 'file', size: 1, hostPath: path.join(c.root, 'a.txt') });
    expect((await c.readDockerfile()).text).toBe('FROM scratch\n');
  });

  test('.dockerignore keeps files out of COPY but not out of the Dockerfile read', async () => {
    write({
      'Dockerfile': 'FROM x\n', '.dockerignore': 'Dockerfile\n.dockerignore\n*.log\nnode_modules\n!node_modules/keep/this.js\nsecret/\n',
      'app.js': '1', 'debug.log': 'l', 'node_modules/a/index.js': 'a', 'node_modules/keep/this.js': 'k', 'node_modules/keep/not.js': 'n',
      'secret/key': 'k',
    });
    const c = await open();
    expect(targets(await c.resolve('.'))).toEqual(['/', 'app.js', 'node_modules/', 'node_modules/keep/', 'node_modules/keep/this.js']);
    expect((await c.readDockerfile()).text).toBe('FROM x\n');
    await expect(c.resolve('debug.log')).rejects.toThrow(NotFoundError);
    await expect(c.resolve('debug.log')).rejects.toMatchObject({ hint: expect.stringMatching(/excluded by .dockerignore/) });
    await expect(c.resolve('secret')).rejects.toThrow(/"secret"/);
    await expect(c.resolve('*.log')).rejects.toThrow(/matched nothing/);
    expect(targets(await c.resolve('node_modules'))).toEqual(['/', 'keep/', 'keep/this.js']);
    expect(c.isIgnored('node_modules/a/index.js')).toBe(true);
    // ignore: false sends everything
    const all = await open(dir, { ignore: false });
    expect(targets(await all.resolve('debug.log'))).toEqual(['debug.log']);
  });

  test('<Dockerfile>.dockerignore beside a named Dockerfile wins over the root one', async () => {
    write({ 'build/app.Dockerfile': 'FROM y\n', 'build/app.Dockerfile.dockerignore': 'a.txt\n', '.dockerignore': 'b.txt\n', 'a.txt': 'a', 'b.txt': 'b' });
    const c = await open(dir, { dockerfile: 'build/app.Dockerfile' });
    expect((await c.readDockerfile()).text).toBe('FROM y\n');
    expect(c.isIgnored('a.txt')).toBe(true);
    expect(c.isIgnored('b.txt')).toBe(false);
  });

  test('the default Dockerfile name falls back to lower case; a missing one is named', async () => {
    write({ 'dockerfile': 'FROM lower\n' });
    const c = await open();
    expect(await c.readDockerfile()).toEqual({ name: 'dockerfile', text: 'FROM lower\n' });
    await expect(c.readDockerfile('Other')).rejects.toThrow(/no such file: Other/);
    await expect(c.readDockerfile('../Dockerfile')).rejects.toThrow(InvalidArgumentError);
  });

  test('symlinks: copied as links inside a directory, followed when named directly inside the context, refused when they leave it', async () => {
    write({
      'data/real.txt': 'real', 'data/rel': { link: 'real.txt' }, 'data/abs': { link: '/etc/passwd' }, 'data/up': { link: '../../outside' },
      'direct': { link: 'data/real.txt' }, 'linkdir': { link: 'data' }, 'out-abs': { link: '/etc/passwd' }, 'out-rel': { link: '../x' },
      'outdir': { link: '/etc' },
    });
    const c = await open();
    expect(targets(await c.resolve('data'))).toEqual(['/', 'abs@/etc/passwd', 'real.txt', 'rel@real.txt', 'up@../../outside']);
    const [d] = await c.resolve('direct');
    expect(d).toMatchObject({ path: 'data/real.txt', target: 'direct', type: 'file', hostPath: path.join(c.root, 'data/real.txt') });
    expect(targets(await c.resolve('linkdir/real.txt'))).toEqual(['real.txt']);
    await expect(c.resolve('out-abs')).rejects.toThrow(/"out-abs" goes through the symbolic link "out-abs" to "\/etc\/passwd", outside the build context/);
    await expect(c.resolve('out-rel')).rejects.toThrow(InvalidArgumentError);
    await expect(c.resolve('outdir/passwd')).rejects.toThrow(/outside the build context/);
    await expect(c.resolve('data/up')).rejects.toThrow(/outside the build context/);
    await expect(c.resolve('../x')).rejects.toThrow(/"..\/x" is outside the build context/);
    fs.symlinkSync('loop', path.join(dir, 'loop'));
    await expect(c.resolve('loop')).rejects.toThrow(/more than 40 symbolic links/);
    // absolute sources are relative to the context root, as in Docker
    expect(targets(await c.resolve('/data/real.txt'))).toEqual(['real.txt']);
    await expect(c.resolve('/etc/passwd')).rejects.toThrow(NotFoundError);
  });

  test('hash: stable across contexts, changes with content or mode, not with mtime or owner', async () => {
    write({ 'src/a': 'one', 'src/b': { mode: 0o755, text: 'two' }, 'src/l': { link: 'a' } });
    const h = async () => {
      const c = await openContext(dir, { tempParent });
      try {
        return await c.hash(await c.resolve('src'));
      } finally {
        await c.close();
      }
    };
    const first = await h();
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await h()).toBe(first);
    fs.utimesSync(path.join(dir, 'src/a'), new Date(1000), new Date(1000));
    fs.chownSync(path.join(dir, 'src/a'), 1234, 1234);
    expect(await h()).toBe(first);
    fs.chmodSync(path.join(dir, 'src/b'), 0o700);
    const moded = await h();
    expect(moded).not.toBe(first);
    fs.writeFileSync(path.join(dir, 'src/a'), 'ONE');
    const edited = await h();
    expect(edited).not.toBe(moded);
    fs.unlinkSync(path.join(dir, 'src/l'));
    fs.symlinkSync('b', path.join(dir, 'src/l'));
    expect(await h()).not.toBe(edited);
    // the same context object sees an edit made between two steps
    const c = await open();
    const before = await c.hash(await c.resolve('src/a'));
    fs.writeFileSync(path.join(dir, 'src/a'), 'changed again, longer');
    expect(await c.hash(await c.resolve('src/a'))).not.toBe(before);
  });

  test('a missing or non-directory context is refused', async () => {
    await expect(openContext(path.join(tmp, 'nope'))).rejects.toThrow(NotFoundError);
    write({ 'f': 'x' });
    await expect(openContext(path.join(dir, 'f'))).rejects.toThrow(/is not a directory/);
  });
});

describe('a tar context', () => {
  test('plain and gzip tars unpack under the temp parent and close removes them', async () => {
    write({ 'Dockerfile': 'FROM t\n', 'app/main.sh': { mode: 0o755, text: 'echo hi' }, 'app/lib/x': 'x', 'app/link': { link: 'main.sh' } });
    const plain = execFileSync('tar', ['-C', dir, '-c', '.']);
    for (const bytes of [plain, gzipSync(plain)]) {
      const c = await openContext(Readable.from([bytes]), { tempParent });
      expect(c.root.startsWith(tempParent + path.sep)).toBe(true);
      expect((await c.readDockerfile()).text).toBe('FROM t\n');
      const es = await c.resolve('app');
      expect(targets(es)).toEqual(['/', 'lib/', 'lib/x', 'link@main.sh', 'main.sh']);
      expect(es.find((e) => e.target === 'main.sh')!.mode).toBe(0o755);
      const local = await open();
      expect(await c.hash(es)).toBe(await local.hash(await local.resolve('app')));
      await c.close();
      await c.close();
      expect(fs.readdirSync(tempParent)).toEqual([]);
    }
  });

  test('a stream that is a Dockerfile, not a tar, is a Dockerfile with an empty context', async () => {
    const c = await open(Readable.from([Buffer.from('FROM busybox\nRUN true\n')]));
    expect((await c.readDockerfile()).text).toBe('FROM busybox\nRUN true\n');
    await expect(c.resolve('x')).rejects.toThrow(NotFoundError);
    await expect(openContext(Readable.from([Buffer.alloc(0)]), { tempParent })).rejects.toThrow(/empty/);
    const plain = await makeTar([{ name: 'Dockerfile', text: 'FROM x\n' }]);
    const xz = execFileSync('xz', ['-c'], { input: plain });
    await expect(openContext(Readable.from([xz]), { tempParent })).rejects.toThrow(/stdin is not a tar or a Dockerfile: it is xz-compressed/);
    const bz = execFileSync('bzip2', ['-c'], { input: plain });
    await expect(openContext(Readable.from([bz]), { tempParent })).rejects.toThrow(/bzip2-compressed/);
    await expect(openContext(Readable.from([Buffer.from([1, 0, 2, 0])]), { tempParent })).rejects.toThrow(/binary data/);
  });

  test('directory entries, implicit parents and duplicate files (the later wins)', async () => {
    const bytes = await makeTar([
      { name: 'd/', type: 'directory', mode: 0o700 },
      { name: 'deep/er/f', text: 'first' },
      { name: 'deep/er/f', text: 'second' },
      { name: 'hl', type: 'link', linkname: 'deep/er/f' },
    ]);
    const c = await open(Readable.from([bytes]));
    expect(fs.readFileSync(path.join(c.root, 'deep/er/f'), 'utf8')).toBe('second');
    expect(fs.readFileSync(path.join(c.root, 'hl'), 'utf8')).toBe('second');
    expect(fs.statSync(path.join(c.root, 'd')).mode & 0o777).toBe(0o700);
  });

  const hostile: [string, TarEntry[], RegExp][] = [
    ['a ../ name', [{ name: 'ok', text: 'x' }, { name: '../evil', text: 'x' }], /tar entry "\.\.\/evil" climbs out of the context/],
    ['a .. inside a name', [{ name: 'a/../../evil', text: 'x' }], /tar entry "a\/\.\.\/\.\.\/evil" climbs out/],
    ['an absolute name', [{ name: '/abs', text: 'x' }], /tar entry "\/abs" has an absolute path/],
    ['a file written through a symlink to /etc/passwd', [{ name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }, { name: 'passwd', text: 'root::0:0::/:/bin/sh\n' }],
      /tar entry "passwd" would be written through the symbolic link "passwd"/],
    ['a file written beneath a symlink to a directory', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/evil', text: 'x' }],
      /tar entry "etc\/evil" would be written through the symbolic link "etc"/],
    ['a hard link to a file outside', [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }], /tar entry "pw" is a hard link to "\/etc\/passwd", outside the context/],
    ['a hard link climbing out', [{ name: 'pw', type: 'link', linkname: '../../../etc/passwd' }], /tar entry "pw" is a hard link to "..\/..\/..\/etc\/passwd", outside/],
    ['a hard link through a symlink', [{ name: 'e', type: 'symlink', linkname: '/etc' }, { name: 'pw', type: 'link', linkname: 'e/passwd' }],
      /tar entry "pw" is a hard link to "e\/passwd", which no earlier entry made/],
    ['a character device', [{ name: 'null', type: 'character-device' }], /tar entry "null" is a character-device/],
    ['a block device', [{ name: 'sda', type: 'block-device' }], /tar entry "sda" is a block-device/],
    ['a fifo', [{ name: 'pipe', type: 'fifo' }], /tar entry "pipe" is a fifo/],
    ['a file over the root', [{ name: './', type: 'symlink', linkname: '/' }], /names the context root/],
    ['a directory made over a symlink', [{ name: 'd', type: 'symlink', linkname: '/tmp' }, { name: 'd/', type: 'directory' }],
      /tar entry "d\/" would be written through the symbolic link "d"/],
    ['a hard link to a symlink out', [{ name: 's', type: 'symlink', linkname: '/etc/passwd' }, { name: 'h', type: 'link', linkname: 's' }],
      /tar entry "h" is a hard link to "s", which is not a file/],
    ['a file replacing a directory', [{ name: 'x/f', text: 'x' }, { name: 'x', text: 'y' }], /tar entry "x" would replace the directory "x"/],
  ];
  for (const [what, entries, message] of hostile) {
    test(`refuses ${what}, naming the entry, and leaves nothing`, async () => {
      const before = fs.readFileSync('/etc/passwd');
      const err = await openContext(Readable.from([await makeTar(entries)]), { tempParent }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
      expect(fs.readdirSync(tempParent)).toEqual([]);
      expect(fs.readFileSync('/etc/passwd')).toEqual(before);
      expect(fs.existsSync(path.join(tmp, 'evil'))).toBe(false);
    });
  }

  test('refuses an oversized extended header and a truncated tar, leaving nothing', async () => {
    const pax = Buffer.alloc(512);
    pax.write('././@PaxHeader', 0);
    pax.write('0000644\0', 100);
    pax.write((64 << 20).toString(8).padStart(11, '0') + '\0', 124);
    pax.write('x', 156);
    pax.write('ustar\x0000', 257);
    let sum = 8 * 0x20;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += pax[i]!;
    pax.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    await expect(openContext(Readable.from([Buffer.concat([pax, Buffer.alloc(4096)])]), { tempParent })).rejects.toThrow(/corrupt or truncated: Header exceeds max size/);
    const good = await makeTar([{ name: 'f', text: 'x'.repeat(10_000) }]);
    await expect(openContext(Readable.from([good.subarray(0, 2048)]), { tempParent })).rejects.toThrow(InvalidArgumentError);
    await expect(openContext(Readable.from([Buffer.from([0x1f, 0x8b, 0, 1, 2, 3])]), { tempParent })).rejects.toThrow(/corrupt/);
  });
});

describe('globs and crash leftovers', () => {
  test('a glob of N components matches N levels down, and a class may cross a /', async () => {
    write({ 'a.ts': 'a', 'src/b.ts': 'b', 'src/deep/c.ts': 'c', 'src/d.js': 'd' });
    const c = await open();
    expect(targets(await c.resolve('*.ts'))).toEqual(['a.ts']);
    expect(targets(await c.resolve('*/*.ts'))).toEqual(['b.ts']);
    expect(targets(await c.resolve('src/*/*.ts'))).toEqual(['c.ts']);
    expect(targets(await c.resolve('src[/]b.ts'))).toEqual(['b.ts']);
    await expect(c.resolve('src/[')).rejects.toThrow(/invalid COPY source: bad pattern/);
  });

  test('removeStaleContexts removes what a killed build left, not what a running one holds', async () => {
    const { removeStaleContexts } = await import('../../src/build/context.js');
    // A PID that no process holds: a child that has exited and been reaped.
    const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
    fs.mkdirSync(path.join(tempParent, `berth-context-${dead}-abc123`, 'context'), { recursive: true });
    const live = await open(Readable.from([await makeTar([{ name: 'f', text: 'x' }])]));
    fs.mkdirSync(path.join(tempParent, 'not-ours'));
    expect(await removeStaleContexts(tempParent)).toEqual([`berth-context-${dead}-abc123`]);
    expect(fs.existsSync(live.root)).toBe(true);
    fs.rmdirSync(path.join(tempParent, 'not-ours'));
    expect(await removeStaleContexts(path.join(tmp, 'missing'))).toEqual([]);
  });
});

describe('SourceResolver on a rootfs (COPY --from a stage or image)', () => {
  test('absolute links start again at the root and .. stops there, as inside the container', async () => {
    const { SourceResolver, EntryHasher } = await import('../../src/build/context.js');
    write({ 'usr/lib/libx.so': 'x', 'lib': { link: 'usr/lib' }, 'abs': { link: '/usr/lib/libx.so' }, 'up': { link: '../../../usr/lib' }, 'etc/alt': { link: '/lib' } });
    const r = new SourceResolver(fs.realpathSync(dir), { links: 'rootfs', where: 'stage builder' });
    expect(targets(await r.resolve('/lib/libx.so'))).toEqual(['libx.so']);
    expect((await r.resolve('abs'))[0]).toMatchObject({ path: 'usr/lib/libx.so', target: 'abs' });
    expect((await r.resolve('up/libx.so'))[0]!.path).toBe('usr/lib/libx.so');
    expect((await r.resolve('etc/alt/*.so'))[0]!.path).toBe('usr/lib/libx.so');
    expect(targets(await r.resolve('lib'))).toEqual(['/', 'libx.so']);
    await expect(r.resolve('/nope')).rejects.toThrow(/no such file: "\/nope" in stage builder/);
    const h = new EntryHasher();
    expect(await h.hash(await r.resolve('lib'))).toBe(await h.hash(await r.resolve('usr/lib')));
  });
});
