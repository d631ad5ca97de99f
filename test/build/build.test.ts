/**
 * Issue 15, builds: each RUN a real container, COPY from a context folder, multi-stage builds, the layer
 * cache, and failures that leave nothing behind. RUN steps use --network none.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildStepError } from '../../src/errors.js';
import { cleanupAll, sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import { makeDockerArchive } from '../fixtures/images.js';
import { makeTar } from '../storage/helpers.js';
import { buildHelpers } from './helpers.js';

let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3600 + (process.pid % 100));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-build-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

const { contextDir, build } = buildHelpers(() => t, () => work);

async function runOut(image: string, ...cmd: string[]): Promise<string> {
  const out = sink();
  const res = await t.engine.run({ image, command: cmd.length ? cmd : undefined, autoRemove: true, network: { networks: ['none'] } }, { io: { stdout: out.stream, stderr: out.stream } });
  expect(res.exitCode, out.text()).toBe(0);
  return out.text();
}

async function noContainers(): Promise<void> {
  expect(await t.engine.containers.list({ all: true })).toEqual([]);
  expect(await findLeaks(t.root, t.runroot)).toEqual([]);
}

describe('build', () => {
  it('builds five instructions into an image that runs with their CMD, ENV, WORKDIR and USER', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'ENV GREETING=hello',
      'WORKDIR /app',
      'RUN echo "$GREETING world" > /app/msg && chown 1000 /app/msg',
      'USER 1000',
      'CMD ["sh", "-c", "cat msg; id -u; pwd; echo $GREETING"]',
    ].join('\n'));
    const res = await build(ctx, { tags: ['five:1'] });
    expect(res.tags).toEqual(['five:1']);
    expect(await runOut('five:1')).toBe('hello world\n1000\n/app\nhello\n');
    const img = await t.engine.images.inspect('five:1');
    expect(img.Id).toBe(res.id);
    expect(img.Config.Env).toContain('GREETING=hello');
    expect(img.Config.WorkingDir).toBe('/app');
    expect(img.Config.User).toBe('1000');
    expect(img.Config.Cmd).toEqual(['sh', '-c', 'cat msg; id -u; pwd; echo $GREETING']);
    const history = await t.engine.images.history('five:1');
    // newest first: CMD, USER, RUN, WORKDIR (a layer: /app was made), ENV, then busybox's own
    expect(history.slice(0, 5).map((h) => h.emptyLayer)).toEqual([true, true, false, false, true]);
    expect(history[2]!.createdBy).toContain('echo "$GREETING world"');
    expect(res.events.filter((e) => e.type === 'output').map((e) => (e as { line: string }).line)).toEqual([]);
    await noContainers();
  }, 120_000);
});

describe('progress as an async iterable', () => {
  it('buildEvents yields the steps in order and ends with done; leaving the loop early stops the build', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo one\nCMD ["true"]\n');
    const seen: string[] = [];
    for await (const e of t.engine.images.buildEvents({ context: ctx, network: 'none', noCache: true, tags: ['events:1'] })) {
      seen.push(e.type === 'step' ? `step ${e.step}` : e.type === 'output' ? `output ${e.line}` : e.type);
    }
    expect(seen.filter((s) => s !== 'container')).toEqual(['step 1', 'stepDone', 'step 2', 'output one', 'stepDone', 'step 3', 'stepDone', 'done']);
    expect((await t.engine.images.inspect('events:1')).Config.Cmd).toEqual(['true']);

    const slow = await contextDir('FROM busybox\nRUN echo started; sleep 30\nCMD ["true"]\n');
    const started = Date.now();
    for await (const e of t.engine.images.buildEvents({ context: slow, network: 'none', noCache: true, tags: ['events:2'] })) {
      if (e.type === 'output') break;
    }
    expect(Date.now() - started).toBeLessThan(25_000);
    await expect(t.engine.images.inspect('events:2')).rejects.toThrow(/no such image/);
    await noContainers();
  }, 120_000);
});

describe('failures', () => {
  it('a failing RUN stops the build with its exit code and output; nothing tagged, no container left', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 3\nRUN echo never\n');
    const before = (await t.engine.images.list({ all: true })).length;
    const err = await build(ctx, { tags: ['fails:1'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildStepError);
    expect((err as BuildStepError).commandExitCode).toBe(3);
    expect((err as BuildStepError).output).toContain('oops');
    await expect(t.engine.images.inspect('fails:1')).rejects.toThrow(/no such image/);
    // The step before the failure stays as a cache entry (Docker keeps it too); nothing of the failed one.
    expect((await t.engine.images.list({ all: true })).length).toBeLessThanOrEqual(before + 1);
    await noContainers();
    const cli = await t.cli('build', '--network', 'none', '-t', 'fails:2', ctx);
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr).toMatch(/returned a non-zero code: 3/);
    expect(cli.stdout).toMatch(/Step 3\/4 : RUN echo oops/);
    await noContainers();
  }, 120_000);

  it('Ctrl-C stops a build in the middle of a RUN: its container is killed and removed, nothing tagged, exit 130', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo started; sleep 60\n');
    const bin = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
    const child = execa(bin, ['--root', t.root, '--runroot', t.runroot, 'build', '--network', 'none', '-t', 'interrupted:1', ctx], { reject: false, timeout: 40_000 });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    // The RUN's own output, not the step's header (which names the command too).
    for (let waited = 0; !/^started$/m.test(out) && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/^started$/m);
    const sent = Date.now();
    child.kill('SIGINT');
    const res = await child;
    expect(res.exitCode, res.stderr).toBe(130);
    expect(Date.now() - sent).toBeLessThan(20_000);
    await expect(t.engine.images.inspect('interrupted:1')).rejects.toThrow(/no such image/);
    await noContainers();
  }, 60_000);

  it('an abort that comes with a RUN step\'s header (before its container exists) still stops the build at once', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo started; sleep 60\n');
    const abort = new AbortController();
    const started = Date.now();
    const err = await t.engine.images.build({
      context: ctx, network: 'none', noCache: true, tags: ['aborted:1'], signal: abort.signal,
      onProgress: (e) => { if (e.type === 'step' && e.step === 2) abort.abort(new Error('stopped')); },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(20_000);
    await expect(t.engine.images.inspect('aborted:1')).rejects.toThrow(/no such image/);
    await noContainers();
  }, 60_000);

  it('refuses COPY of a path outside the context or through a link out of it', async () => {
    const ctx = await contextDir('FROM busybox\nCOPY ../x /x\n');
    await expect(build(ctx)).rejects.toThrow(/outside the build context/);
    const ctx2 = await contextDir('FROM busybox\nCOPY out/passwd /x\n');
    await fsp.symlink('../../../../../../../etc', path.join(ctx2, 'out'));
    await expect(build(ctx2)).rejects.toThrow(/outside the build context/);
    await noContainers();
  }, 60_000);
});

describe('COPY', () => {
  it('copies files and folders from the context, folder contents as Docker, with --chown and --chmod', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'COPY a.txt /one/',
      'COPY a.txt /two/renamed.txt',
      'COPY src /app',
      'COPY --chown=1000:1001 --chmod=600 src/sub/c.txt *.md /three/',
      'CMD ["sh", "-c", "cat /one/a.txt /two/renamed.txt; find /app | sort; stat -c \'%u:%g %a %n\' /three/c.txt /three/r.md"]',
    ].join('\n'), { 'a.txt': 'A\n', 'src/b.txt': 'B\n', 'src/sub/c.txt': 'C\n', 'r.md': 'R\n' });
    const { id } = await build(ctx);
    expect(await runOut(id)).toBe('A\nA\n/app\n/app/b.txt\n/app/sub\n/app/sub/c.txt\n1000:1001 600 /three/c.txt\n1000:1001 600 /three/r.md\n');
    await noContainers();
  }, 120_000);

  it('into folders the image has: their owner and mode stay, and the layer holds only the way there and the files', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'RUN mkdir -p /srv/app && chown 1000:1001 /srv/app && chmod 750 /srv/app',
      'COPY a.txt /srv/app/',
      'CMD ["sh", "-c", "stat -c \'%u:%g %a %n\' /srv/app /srv/app/a.txt; cat /srv/app/a.txt"]',
    ].join('\n'), { 'a.txt': 'A\n' });
    const { id } = await build(ctx);
    expect(await runOut(id)).toBe('1000:1001 750 /srv/app\n0:0 644 /srv/app/a.txt\nA\n');
    const top = (await t.engine.images.inspect(id)).RootFS.Layers.at(-1)!;
    const diff = path.join(t.root, 'layers', top.slice('sha256:'.length), 'diff');
    const list = async (rel = '') => (await fsp.readdir(path.join(diff, rel))).map((name) => `${rel}${name}`).sort();
    expect([...(await list()), ...(await list('srv/')), ...(await list('srv/app/'))]).toEqual(['srv', 'srv/app', 'srv/app/a.txt']);
    await noContainers();
  }, 120_000);

  it('through a link in the image, as Docker: the files land where the link leads, the link stays', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'RUN mkdir /real && ln -s /real /link',
      'COPY a.txt /link/',
      'COPY a.txt /link/sub/',
      'CMD ["sh", "-c", "readlink /link; cat /real/a.txt /real/sub/a.txt"]',
    ].join('\n'), { 'a.txt': 'A\n' });
    const { id } = await build(ctx);
    expect(await runOut(id)).toBe('/real\nA\nA\n');
    await noContainers();
  }, 120_000);

  it('keeps the extended attributes of the image\'s folders on the way', async () => {
    const base = await makeTar([
      { name: 'srv/', pax: { 'SCHILY.xattr.user.berth': 'kept' } },
      { name: 'srv/old', data: 'old' },
    ]);
    const baseId = await t.engine.images.import(Readable.from([base]), { reference: 'xattr-base:1' });
    const ctx = await contextDir('FROM xattr-base:1\nCOPY a.txt /srv/\n', { 'a.txt': 'A\n' });
    const { id } = await build(ctx);
    expect(id).not.toBe(baseId);
    const root = await t.engine.images.mount(id);
    try {
      expect((await execa('getfattr', ['--only-values', '-n', 'user.berth', path.join(root, 'srv')])).stdout).toBe('kept');
      expect(await fsp.readFile(path.join(root, 'srv/a.txt'), 'utf8')).toBe('A\n');
      expect(await fsp.readFile(path.join(root, 'srv/old'), 'utf8')).toBe('old');
    } finally {
      await t.engine.images.unmount(id);
    }
  }, 120_000);

  it('multi-stage: COPY --from takes a stage\'s file; the final image lacks the build stage\'s files', async () => {
    const ctx = await contextDir([
      'FROM busybox AS builder',
      'RUN mkdir /out && echo built > /out/artifact && echo junk > /scratch-file',
      'FROM busybox',
      'COPY --from=builder /out/artifact /artifact',
      'CMD ["sh", "-c", "cat /artifact; ls /scratch-file /out 2>&1 || true"]',
    ].join('\n'));
    const { id } = await build(ctx, { tags: ['multi:1'] });
    const out = await runOut(id);
    expect(out).toMatch(/^built\n/);
    expect(out).toMatch(/scratch-file: No such file/);
    expect(out).toMatch(/\/out: No such file/);
    await noContainers();
  }, 120_000);
});

describe('cache', () => {
  it('a rebuild hits the cache for every step; a changed file re-runs from its COPY on; --no-cache runs all', async () => {
    const df = 'FROM busybox\nENV A=1\nRUN echo one > /one\nCOPY f.txt /f.txt\nRUN cat /f.txt > /copy\nCMD ["cat", "/copy"]\n';
    const ctx = await contextDir(df, { 'f.txt': 'v1\n' });
    const first = await build(ctx);
    expect(first.cached).toEqual([]);
    const again = await build(ctx);
    expect(again.cached).toEqual([2, 3, 4, 5, 6]);
    expect(again.id).toBe(first.id);
    await fsp.writeFile(path.join(ctx, 'f.txt'), 'v2\n');
    const changed = await build(ctx);
    expect(changed.cached).toEqual([2, 3]);
    expect(await runOut(changed.id)).toBe('v2\n');
    const fresh = await build(ctx, { noCache: true });
    expect(fresh.cached).toEqual([]);
    expect(fresh.id).not.toBe(changed.id);
    // The cache survives across commands (the CLI is another process).
    expect(await t.ok('build', '--network', 'none', ctx)).toMatch(/Using cache[\s\S]*Successfully built/);
    await noContainers();
  }, 180_000);

  it('an entry whose image was pruned is a miss, not an error', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo x > /x\n');
    await build(ctx);
    await t.engine.images.prune();
    const again = await build(ctx, { tags: ['pruned:1'] });
    expect(again.cached).toEqual([]);
    expect(await runOut('pruned:1', 'cat', '/x')).toBe('x\n');
  }, 120_000);
});

describe('arguments', () => {
  it('--build-arg sets an ARG for RUN (and its cache key); --target builds only the stages it needs', async () => {
    const ctx = await contextDir([
      'ARG BASE=busybox',
      'FROM $BASE AS first',
      'ARG WHO=nobody',
      'RUN echo "hi $WHO" > /greeting',
      'CMD ["cat", "/greeting"]',
      'FROM first AS second',
      'RUN exit 1',
    ].join('\n'));
    const a = await build(ctx, { target: 'first', buildArgs: { WHO: 'alice' } });
    expect(await runOut(a.id)).toBe('hi alice\n');
    const b = await build(ctx, { target: 'first', buildArgs: { WHO: 'bob' } });
    expect(b.cached).not.toContain(3);
    expect(await runOut(b.id)).toBe('hi bob\n');
    const d = await build(ctx, { target: 'first' });
    expect(await runOut(d.id)).toBe('hi nobody\n');
    // ENV does not keep the ARG: the image's config has no WHO.
    expect(((await t.engine.images.inspect(a.id)).Config.Env as string[] | undefined)?.some((e) => e.startsWith('WHO='))).toBe(false);
  }, 120_000);

  it('-q prints only the ID, --iidfile writes it, --label labels the image', async () => {
    const ctx = await contextDir('FROM busybox\nLABEL a=b\nEXPOSE 80\nVOLUME /data\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s CMD true\n');
    const iid = path.join(work, 'iid');
    const out = await t.ok('build', '-q', '--iidfile', iid, '--label', 'x=y', ctx);
    expect(out).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await fsp.readFile(iid, 'utf8')).toBe(out);
    const img = await t.engine.images.inspect(out);
    expect(img.Config.Labels).toEqual({ a: 'b', x: 'y' });
    expect(img.Config.ExposedPorts).toEqual({ '80/tcp': {} });
    expect(img.Config.Volumes).toEqual({ '/data': {} });
    expect(img.Config.StopSignal).toBe('SIGTERM');
    expect(img.Config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5e9 });
  }, 120_000);
});

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

describe('the real parser and context', () => {
  it('builds from a tar context on stdin through the CLI (tar -c . | berth build -t x -)', async () => {
    const ctx = await contextDir('FROM busybox\nCOPY app/ /app/\nCMD ["cat", "/app/msg"]\n', { 'app/msg': 'from the tar\n' });
    const build = `tar -C ${JSON.stringify(ctx)} -c . | ${JSON.stringify(BIN)} --root ${JSON.stringify(t.root)} --runroot ${JSON.stringify(t.runroot)} build --network none -t fromtar:1 -`;
    const res = await execa('sh', ['-c', build], { reject: false, timeout: 60_000 });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Successfully tagged fromtar:1/);
    expect(await runOut('fromtar:1')).toBe('from the tar\n');
    // The unpacked context is removed once the build ends.
    expect(await fsp.readdir(path.join(t.root, 'build-tmp')).catch(() => [])).toEqual([]);
    await noContainers();
  }, 120_000);

  it('runs RUN heredocs (shell and #! script) and writes COPY heredocs', async () => {
    const ctx = await contextDir([
      'FROM busybox',
      'ARG WHO=heredoc',
      'RUN <<EOF',
      'echo one > /one',
      'echo two >> /one',
      'EOF',
      'RUN <<EOF',
      '#!/bin/sh',
      'echo "script $0" > /script',
      'EOF',
      'COPY <<EOF /etc/greeting',
      'hello ${WHO}',
      'EOF',
      'COPY --chmod=755 <<"EOF" /bin/raw',
      'echo ${WHO}',
      'EOF',
    ].join('\n'));
    await build(ctx, { tags: ['heredoc:1'] });
    expect(await runOut('heredoc:1', 'cat', '/one', '/script', '/etc/greeting')).toBe('one\ntwo\nscript /dev/pipes/EOF\nhello heredoc\n');
    expect(await runOut('heredoc:1', 'sh', '-c', 'cat /bin/raw; stat -c %a /bin/raw; ls /dev/pipes 2>&1 || true')).toMatch(/^echo \$\{WHO\}\n755\n.*No such file/);
    await noContainers();
  }, 120_000);

  it('.dockerignore keeps a file out of a COPY of a folder', async () => {
    const ctx = await contextDir('FROM busybox\nCOPY . /ctx/\n', { '.dockerignore': 'secret.txt\n*.log\n!keep.log\n', 'secret.txt': 'no', 'a.log': 'no', 'keep.log': 'yes', 'app.txt': 'yes' });
    await build(ctx, { tags: ['ignored:1'] });
    expect((await runOut('ignored:1', 'ls', '-A', '/ctx')).split('\n').filter(Boolean)).toEqual(['.dockerignore', 'Dockerfile', 'app.txt', 'keep.log']);
    const named = await contextDir('FROM busybox\nCOPY secret.txt /x\n', { '.dockerignore': 'secret.txt\n', 'secret.txt': 'no' });
    await expect(build(named)).rejects.toMatchObject({ message: expect.stringMatching(/"secret.txt"/) as unknown, hint: expect.stringMatching(/excluded by .dockerignore/) as unknown });
    await noContainers();
  }, 120_000);

  it('a Dockerfile syntax error exits 1 with the line named; refused features say "not supported yet"', async () => {
    const ctx = await contextDir('FROM busybox\nRUN echo ok\nCOPY --from=a --from=b x /y\n');
    const res = await t.cli('build', '--network', 'none', ctx);
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/Dockerfile:3: COPY: .*--from/);
    const unknown = await t.cli('build', await contextDir('FROM busybox\n\nFROBNICATE x\n'));
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/Dockerfile:3: unknown instruction: FROBNICATE/);
    for (const [df, what] of [
      ['FROM busybox\nRUN --mount=type=ssh true\n', /RUN --mount=type=ssh is not supported yet/],
      ['FROM busybox\nADD git@example.invalid:a/b.git /x\n', /ADD of a git repository is not supported yet/],
      ['FROM busybox\nCOPY --link Dockerfile /x\n', /COPY --link is not supported yet/],
    ] as const) {
      const r = await t.cli('build', '--network', 'none', await contextDir(df));
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(what);
    }
    await noContainers();
  }, 120_000);
});

describe('ONBUILD', () => {
  it('a base image\'s triggers run after FROM on the child\'s context, and the child does not carry them', async () => {
    const base = await contextDir([
      'FROM busybox',
      'ONBUILD ARG GREETING=hi',
      'ONBUILD COPY msg /msg',
      'ONBUILD RUN echo "$GREETING from the trigger" > /t',
      'ONBUILD ENV FROM_TRIGGER=1',
    ].join('\n'), { msg: 'base context\n' });
    await build(base, { tags: ['onbuild-base:1'] });
    expect((await t.engine.images.inspect('onbuild-base:1')).Config.OnBuild).toHaveLength(4);
    const child = await contextDir('FROM onbuild-base:1\nCMD ["sh", "-c", "cat /msg /t; echo $FROM_TRIGGER"]\n', { msg: 'child context\n' });
    const cli = await t.cli('build', '--network', 'none', '-t', 'onbuild-child:1', child);
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/Step 1\/2 : FROM onbuild-base:1\n# Executing 4 build triggers\n/);
    expect(await runOut('onbuild-child:1')).toBe('child context\nhi from the trigger\n1\n');
    expect((await t.engine.images.inspect('onbuild-child:1')).Config.OnBuild ?? []).toEqual([]);
    // The triggers' steps are cached like any other; a grandchild runs none (its base carries none).
    expect((await build(child)).cached).toEqual([1, 1, 1, 1, 2]);
    const grand = await build(await contextDir('FROM onbuild-child:1\nRUN cat /t\n'));
    expect(grand.events.some((e) => e.type === 'note' && /trigger/.test(e.message))).toBe(false);
    expect(grand.output).toEqual(['hi from the trigger']);
    await noContainers();
  }, 120_000);

  it('refuses a trigger Docker refuses, from an image made by anything but a Dockerfile', async () => {
    for (const [trigger, why] of [
      ['FROM busybox', /FROM isn't allowed as an ONBUILD trigger/],
      ['ONBUILD RUN true', /chaining ONBUILD/],
      ['MAINTAINER me', /MAINTAINER isn't allowed/],
      ['FROBNICATE x', /unknown instruction: FROBNICATE/],
      ['RUN a\nRUN b', /one line/],
    ] as const) {
      const archive = path.join(work, 'onbuild-bad.tar');
      await makeDockerArchive(archive, [{ entries: [{ type: 'file', path: 'f', content: 'x' }] }], { tags: ['onbuild-bad:1'], config: { OnBuild: [trigger] } });
      await t.engine.images.load(archive);
      const r = await t.cli('build', '--network', 'none', await contextDir('FROM onbuild-bad:1\nRUN true\n'));
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/line 1: onbuild-bad:1 has the ONBUILD trigger/);
      expect(r.stderr).toMatch(why);
    }
    await noContainers();
  }, 120_000);
});
