/**
 * Issue 15, the BuildKit features once refused as "not supported yet": RUN --mount (cache, bind, tmpfs,
 * secret), ADD of a URL with --checksum, --chown by name. Real builds, each RUN a container (--network none).
 */
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import { buildHelpers } from './helpers.js';

let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3700 + (process.pid % 50));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-build-features-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

const { contextDir, build } = buildHelpers(() => t, () => work);

async function runOut(image: string, ...cmd: string[]): Promise<string> {
  const out = sink();
  const res = await t.engine.run({ image, command: cmd, autoRemove: true, network: { networks: ['none'] } }, { io: { stdout: out.stream, stderr: out.stream } });
  expect(res.exitCode, out.text()).toBe(0);
  return out.text();
}

async function noLeftovers(): Promise<void> {
  expect(await t.engine.containers.list({ all: true })).toEqual([]);
  expect(await fsp.readdir(path.join(t.root, 'build-tmp')).catch(() => [])).toEqual([]);
  expect(await findLeaks(t.root, t.runroot)).toEqual([]);
}

describe('RUN --mount', () => {
  it('type=cache: a folder kept across builds (two --no-cache builds see both lines), never in the image', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'RUN --mount=type=cache,target=/var/cache/app,id=features-log echo "line $(date +%s%N)" >> /var/cache/app/log && cat /var/cache/app/log',
    ].join('\n'));
    const first = await build(ctx, { noCache: true });
    expect(first.output).toHaveLength(1);
    const second = await build(ctx, { noCache: true });
    expect(second.output).toHaveLength(2);
    expect(second.output[0]).toBe(first.output[0]);
    expect(await runOut(second.id, 'sh', '-c', 'ls -A /var/cache/app 2>/dev/null; echo end')).toBe('end\n');
    // uid/gid/mode take effect when the cache is made; a locked cache is taken and given back.
    const ctx2 = await contextDir('FROM busybox\nRUN --mount=type=cache,target=/c,uid=1000,gid=1001,mode=0710,sharing=locked stat -c "%u:%g %a" /c\n');
    expect((await build(ctx2, { noCache: true })).output).toEqual(['1000:1001 710']);
    await noLeftovers();
  }, 120_000);

  it('type=bind: the context read-only by default, writes to rw discarded, from= a stage; its content keys the cache', async () => {
    const ctx = await contextDir([
      'FROM busybox AS tools',
      'RUN mkdir -p /opt/tool && echo tool-v1 > /opt/tool/version',
      'FROM busybox',
      'RUN --mount=type=bind,source=data,target=/mnt cat /mnt/f > /copied',
      'RUN --mount=target=/ctx sh -c "touch /ctx/x 2>/dev/null && echo writable || echo readonly"',
      'RUN --mount=type=bind,target=/ctx,rw sh -c "echo new > /ctx/written && cat /ctx/written"',
      'RUN --mount=type=bind,from=tools,source=/opt/tool,target=/t cat /t/version > /tool-version',
    ].join('\n'), { 'data/f': 'one\n' });
    const res = await build(ctx);
    expect(res.output).toEqual(['readonly', 'new']);
    expect(await runOut(res.id, 'sh', '-c', 'cat /copied /tool-version; ls -A /mnt /ctx /t 2>/dev/null; true')).toBe('one\ntool-v1\n');
    expect(await fsp.readdir(ctx)).not.toContain('written');
    // The bound files' content is part of a RUN's key: editing data/f re-runs the RUNs that bind it (the whole
    // context's binds too), not the stage above.
    const again = await build(ctx);
    expect(again.id).toBe(res.id);
    await fsp.writeFile(path.join(ctx, 'data/f'), 'two\n');
    const edited = await build(ctx);
    expect(edited.cached).toEqual([2]);
    expect(await runOut(edited.id, 'cat', '/copied')).toBe('two\n');
    await noLeftovers();
  }, 180_000);

  it('type=bind of the context shows only what .dockerignore lets through; rw writes never reach the files', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'RUN --mount=target=/ctx sh -c "cat /ctx/keep.txt; for p in secret.env sub/.git sub/a; do test -e /ctx/\\$p && echo \\$p || echo no-\\$p; done; (echo x >> /ctx/keep.txt) 2>/dev/null || echo readonly"',
      'RUN --mount=target=/ctx,rw sh -c "echo changed > /ctx/keep.txt; cat /ctx/keep.txt; test -e /ctx/secret.env || echo no-secret"',
      'RUN --mount=type=bind,source=sub,target=/s ls -A /s',
    ].join('\n'), { 'keep.txt': 'kept\n', 'secret.env': 'TOKEN=1\n', '.dockerignore': 'secret.env\n**/.git\n', 'sub/a': 'a\n', 'sub/.git/config': 'g\n' });
    const res = await build(ctx, { noCache: true });
    expect(res.output).toEqual(['kept', 'no-secret.env', 'no-sub/.git', 'sub/a', 'readonly', 'changed', 'no-secret', 'a']);
    expect(await fsp.readFile(path.join(ctx, 'keep.txt'), 'utf8')).toBe('kept\n');
    await noLeftovers();
  }, 120_000);

  it('type=tmpfs: a tmpfs for the RUN only', async () => {
    const ctx = await contextDir('FROM busybox\nRUN --mount=type=tmpfs,target=/scratch,size=1m sh -c "echo hi > /scratch/a && grep -c \' /scratch tmpfs \' /proc/mounts"\n');
    const res = await build(ctx);
    expect(res.output).toEqual(['1']);
    expect(await runOut(res.id, 'sh', '-c', 'ls -A /scratch 2>/dev/null; echo end')).toBe('end\n');
    await noLeftovers();
  }, 60_000);

  it('type=secret: bound read-only for its RUN only; never in a layer, the config, the history or the cache', async () => {
    const secret = 'berth-s3cret-4f1c9a';
    const file = path.join(work, 'token');
    await fsp.writeFile(file, secret, { mode: 0o600 });
    const digest = createHash('sha256').update(secret).digest('hex');
    const ctx = await contextDir([
      'FROM busybox',
      `RUN --mount=type=secret,id=tok sh -c 'sha256sum /run/secrets/tok | cut -c1-64; stat -c "%u %a" /run/secrets/tok && ((echo x >> /run/secrets/tok) 2>/dev/null && echo writable || echo readonly)'`,
      'RUN --mount=type=secret,id=tok,target=/etc/tok,uid=1000,mode=0440 stat -c "%u %a" /etc/tok > /owner',
      'RUN --mount=type=secret,id=absent echo optional secret not given',
      'RUN cat /run/secrets/tok /etc/tok 2>/dev/null; echo gone',
    ].join('\n'));
    const res = await build(ctx, { secrets: [{ id: 'tok', src: file }], tags: ['secret:1'] });
    expect(res.output).toEqual([digest, '0 400', 'readonly', 'optional secret not given', 'gone']);
    expect(await runOut(res.id, 'cat', '/owner')).toBe('1000 440\n');
    expect(await fsp.readFile(file, 'utf8')).toBe(secret);
    // Nowhere under the store: layers (unpacked and as blobs), configs with their history, cache entries.
    const inspect = JSON.stringify([await t.engine.images.inspect('secret:1'), await t.engine.images.history('secret:1')]);
    expect(inspect).not.toContain(secret);
    const tar = path.join(work, 'secret.tar');
    await t.ok('save', '-o', tar, 'secret:1');
    const hits = (dir: string) => execFileSync('sh', ['-c', 'grep -rlaF "$1" "$2" || true', 'sh', secret, dir], { encoding: 'utf8' });
    expect(hits(t.root)).toBe('');
    expect(execFileSync('sh', ['-c', 'tar -xOf "$1" | (zcat -f 2>/dev/null || cat) | grep -caF "$2" || true', 'sh', tar, secret], { encoding: 'utf8' }).trim()).toBe('0');
    await fsp.rm(tar);
    // The CLI's --secret takes the same.
    const cli = await t.cli('build', '--network', 'none', '--no-cache', '--secret', `id=tok,src=${file}`, ctx);
    expect(cli.exitCode, cli.stderr).toBe(0);
    await noLeftovers();
  }, 180_000);

  it('refuses a missing required secret, a --secret file that does not exist, type=ssh and unknown options', async () => {
    const ctx = await contextDir('FROM busybox\nRUN --mount=type=secret,id=tok,required echo no\n');
    await expect(build(ctx)).rejects.toThrow(/secret "tok" is required but was not given/);
    await expect(build(ctx, { secrets: [{ id: 'tok', src: path.join(work, 'nope') }] })).rejects.toThrow(/no such file: .*nope \(secret "tok"\)/);
    const ssh = await contextDir('FROM busybox\nRUN --mount=type=ssh echo no\n');
    await expect(build(ssh)).rejects.toThrow(/line 2: RUN --mount=type=ssh is not supported yet/);
    const bad = await contextDir('FROM busybox\nRUN --mount=type=cache,target=/c,colour=red echo no\n');
    await expect(build(bad)).rejects.toThrow(/type=cache takes no "colour" option/);
    const cli = await t.cli('build', '--secret', 'id=tok', ctx);
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr).toMatch(/needs both id= and src=/);
    await noLeftovers();
  }, 60_000);
});

describe('--chown by name', () => {
  it('resolves user and group names from the build image\'s /etc/passwd and /etc/group; an unknown name is an error', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'RUN echo sailor:x:1500:2000::/:/bin/sh >> /etc/passwd && printf "crew:x:2000:\\ndock:x:2100:\\n" >> /etc/group',
      'COPY --chown=sailor:dock f /both',
      'COPY --chown=sailor f /user-only',
      'COPY --chown=1600:crew f /mixed',
      'ADD --chown=sailor:crew f /added',
    ].join('\n'), { f: 'x\n' });
    const { id } = await build(ctx);
    expect(await runOut(id, 'stat', '-c', '%u:%g %n', '/both', '/user-only', '/mixed', '/added'))
      .toBe('1500:2100 /both\n1500:2000 /user-only\n1600:2000 /mixed\n1500:2000 /added\n');
    const unknown = await contextDir('FROM busybox\nCOPY --chown=nosuchuser f /f\n', { f: 'x\n' });
    const r = await t.cli('build', '--network', 'none', unknown);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/no user "nosuchuser" in the image's \/etc\/passwd/);
    await noLeftovers();
  }, 120_000);
});

describe('ADD <URL>', () => {
  const requests: string[] = [];
  const served: Record<string, { body: Buffer; headers?: Record<string, string> }> = {};
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url!);
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/files/hello.txt' }).end();
        return;
      }
      const f = served[req.url!];
      if (!f) {
        res.writeHead(404).end('not here');
        return;
      }
      res.writeHead(200, { 'content-length': String(f.body.length), ...f.headers }).end(f.body);
    });
    const port = 15400 + (process.pid % 20);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches a file: named from the URL or Content-Disposition, mode 600, mtime from Last-Modified, a tar never extracted', async () => {
    served['/files/hello.txt'] = { body: Buffer.from('hello from http\n'), headers: { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' } };
    served['/download?id=7'] = { body: Buffer.from('named\n'), headers: { 'content-disposition': 'attachment; filename="named.bin"' } };
    const tgz = path.join(work, 'a.tar.gz');
    await fsp.mkdir(path.join(work, 'tarred'), { recursive: true });
    await fsp.writeFile(path.join(work, 'tarred', 'inside.txt'), 'inside\n');
    execFileSync('tar', ['-czf', tgz, '-C', path.join(work, 'tarred'), '.'], { stdio: 'ignore' });
    served['/files/a.tar.gz'] = { body: await fsp.readFile(tgz) };
    const ctx = await contextDir([
      'FROM busybox',
      `ADD ${base}/files/hello.txt /web/`,
      `ADD ${base}/redirect /web/renamed.txt`,
      `ADD ${base}/download?id=7 /web/`,
      `ADD --chmod=644 ${base}/files/a.tar.gz /web/`,
    ].join('\n'));
    const { id } = await build(ctx);
    const script = 'cd /web && stat -c "%n %a %Y" hello.txt renamed.txt && stat -c "%n %a" named.bin a.tar.gz && cat hello.txt renamed.txt named.bin && gzip -t a.tar.gz && echo gz';
    expect(await runOut(id, 'sh', '-c', script))
      .toBe('hello.txt 600 1445412480\nrenamed.txt 600 1445412480\nnamed.bin 600\na.tar.gz 644\nhello from http\nhello from http\nnamed\ngz\n');
    await noLeftovers();
  }, 120_000);

  it('--checksum: a match builds and a rebuild fetches nothing; a mismatch exits 1 with nothing tagged', async () => {
    const body = Buffer.from('checked content\n');
    served['/files/checked.txt'] = { body };
    const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const ctx = await contextDir(`FROM busybox\nADD --checksum=${sum} ${base}/files/checked.txt /checked.txt\n`);
    const first = await build(ctx, { tags: ['checked:1'] });
    expect(await runOut(first.id, 'cat', '/checked.txt')).toBe('checked content\n');
    const before = requests.length;
    const again = await build(ctx);
    expect(again.id).toBe(first.id);
    expect(again.cached).toEqual([2]);
    expect(requests.length).toBe(before);
    const wrong = await contextDir(`FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/checked.txt /checked.txt\n`);
    const r = await t.cli('build', '--network', 'none', '-t', 'wrongsum:1', wrong);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`has the digest ${sum}, not sha256:${'0'.repeat(64)}`);
    await expect(t.engine.images.inspect('wrongsum:1')).rejects.toThrow(/no such image/);
    const bad = await contextDir(`FROM busybox\nADD --checksum=md5:abc ${base}/files/checked.txt /x\n`);
    await expect(build(bad)).rejects.toThrow(/"md5:abc" is not sha256:<64 hex digits>/);
    await noLeftovers();
  }, 120_000);

  it('without --checksum the content keys the cache: the same bytes hit, new bytes rebuild; a 404 is a clear error', async () => {
    served['/files/v.txt'] = { body: Buffer.from('v1\n') };
    const ctx = await contextDir(`FROM busybox\nADD ${base}/files/v.txt /v.txt\nRUN cat /v.txt\n`);
    const first = await build(ctx);
    expect(first.output).toEqual(['v1']);
    expect((await build(ctx)).cached).toEqual([2, 3]);
    served['/files/v.txt'] = { body: Buffer.from('v2\n') };
    const changed = await build(ctx);
    expect(changed.cached).toEqual([]);
    expect(changed.output).toEqual(['v2']);
    const missing = await contextDir(`FROM busybox\nADD ${base}/files/nope.txt /x\n`);
    await expect(build(missing)).rejects.toThrow(/GET .*nope.txt answered HTTP 404/);
    const git = await contextDir('FROM busybox\nADD git@example.invalid:a/b.git /src\n');
    await expect(build(git)).rejects.toThrow(/ADD of a git repository is not supported yet/);
    await noLeftovers();
  }, 120_000);
});
