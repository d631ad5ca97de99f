/**
 * Issue 15's own cases: the seeds' data-packed volume container built from a Dockerfile and shared with
 * --volumes-from; the README's build example as written; and interop with Podman (installed here, with
 * the containers.conf MACHINE-NOTES gives): a Berth-built image saved, loaded into Podman and run there,
 * and its config and history compared with `podman build --layers`'s for the same Dockerfile.
 */
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, unmountUnder, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3775 + (process.pid % 25));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-build-issue-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

/** A context folder with `files` (name → content). */
async function contextDir(files: Record<string, string>): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(work, 'ctx-'));
  for (const [name, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fsp.writeFile(path.join(dir, name), content);
  }
  return dir;
}

describe('issue 15', () => {
  it('the seeds\' data-packed volume container, built from a Dockerfile, is shared with --volumes-from', async () => {
    const ctx = await contextDir({
      Dockerfile: 'FROM busybox\nADD data /data\nVOLUME /data\n',
      'data/seed.txt': 'seed data\n',
      'data/sub/more.txt': 'more data\n',
    });
    await t.ok('build', '-t', 'datavol', ctx);
    await t.ok('create', '--name', 'store', 'datavol');
    const read = ['run', '--rm', '--network', 'none', '--volumes-from', 'store', 'busybox'];
    expect(await t.ok(...read, 'cat', '/data/seed.txt', '/data/sub/more.txt')).toBe('seed data\nmore data');
    // The volume is shared, not copied per container: a write by one is read by the next.
    await t.ok(...read, 'sh', '-c', 'echo written > /data/new.txt');
    expect(await t.ok(...read, 'cat', '/data/new.txt')).toBe('written');
    await t.ok('rm', '-v', 'store');
    await t.ok('rmi', 'datavol');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 120_000);

  it('the README\'s build example runs as written: tar -c . | berth build -t app -', async () => {
    const ctx = await contextDir({
      Dockerfile: 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN wc -c < /hello.txt > /size\nCMD ["sh", "-c", "cat /hello.txt /size"]\n',
      'hello.txt': 'hello\n',
    });
    const berth = `'${BIN}' --root '${t.root}' --runroot '${t.runroot}'`;
    const res = await execa('sh', ['-c', `tar -c . | ${berth} build -t app -`], { cwd: ctx, reject: false, timeout: 120_000 });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Successfully tagged app:latest$/);
    expect(await t.ok('run', '--rm', '--network', 'none', 'app')).toBe('hello\n6');
    // The usage line's options, together.
    const iid = path.join(work, 'iid');
    const df = path.join(work, 'Other.Dockerfile');
    await fsp.writeFile(df, 'FROM busybox AS base\nARG WHO\nRUN echo "hi $WHO" > /hi\nFROM base AS unused\nRUN exit 1\n');
    const q = await t.ok('build', '-t', 'app:2', '-f', df, '--build-arg', 'WHO=you', '--target', 'base', '--no-cache', '--network', 'none', '--label', 'l=1', '-q', '--iidfile', iid, ctx);
    expect(q).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await fsp.readFile(iid, 'utf8')).toBe(q);
    expect(await t.ok('run', '--rm', '--network', 'none', 'app:2', 'cat', '/hi')).toBe('hi you');
    expect(await t.ok('image', 'inspect', '-f', '{{.Config.Labels}}', 'app:2')).toBe('map[l:1]');
    await t.ok('rmi', 'app', 'app:2');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 180_000);
});

/** Podman on its own temp root, run root and tmpdir, so nothing of it lands in /var/lib/containers or /run/libpod. */
function podmanAt(dir: string) {
  const args = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp'),
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
  return async (...cmd: string[]) => {
    const res = await execa('podman', [...args, ...cmd], { reject: false, timeout: 120_000 });
    expect(res.exitCode, `podman ${cmd.join(' ')}: ${res.stderr}`).toBe(0);
    return res.stdout.trim();
  };
}

interface PodmanImage {
  Config: Record<string, unknown>;
  History: { created_by?: string; empty_layer?: boolean }[];
}

describe('interop with podman', () => {
  it('a Berth image saved and loaded into podman runs there; config and history match podman build\'s', async () => {
    const dir = await fsp.mkdtemp(path.join(tmpdir(), 'berth-podman-'));
    const podman = podmanAt(dir);
    try {
      const ctx = await contextDir({
        Dockerfile: [
          'FROM localhost/busybox:latest',
          'ENV A=1 B="two words"',
          'WORKDIR /app',
          'COPY f.txt ./',
          'RUN echo made > /app/out',
          'USER 1000:1000',
          'EXPOSE 8080 53/udp',
          'VOLUME /data',
          'LABEL k=v other="x y"',
          'STOPSIGNAL SIGTERM',
          'HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD true',
          'ENTRYPOINT ["/bin/sh", "-c"]',
          'CMD ["cat /app/out /app/f.txt; id -u"]',
          '',
        ].join('\n'),
        'f.txt': 'from the context\n',
      });
      await t.ok('build', '--network', 'none', '-t', 'interop:1', ctx);
      const archive = path.join(dir, 'img.tar');
      // The base goes along: podman build below starts from the same busybox.
      await t.ok('save', '-o', archive, 'interop:1', 'localhost/busybox:latest');
      await podman('load', '-i', archive);
      expect(await podman('run', '--rm', '--network', 'none', 'localhost/interop:1')).toBe('made\nfrom the context\n1000');
      // --format docker: podman's OCI format drops HEALTHCHECK (and warns); Docker's image format keeps it.
      await podman('build', '--format', 'docker', '--layers', '--network', 'none', '-t', 'theirs:1', ctx);
      const inspect = async (ref: string) => (JSON.parse(await podman('image', 'inspect', ref)) as PodmanImage[])[0]!;
      const [ours, theirs] = [await inspect('localhost/interop:1'), await inspect('localhost/theirs:1')];
      const fields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck'];
      const pick = (img: PodmanImage) => {
        const c: Record<string, unknown> = { ...img.Config, Healthcheck: (img as unknown as Record<string, unknown>).Healthcheck };
        // Buildah stamps its version on every image; Docker does not.
        if (c.Labels) c.Labels = Object.fromEntries(Object.entries(c.Labels as Record<string, string>).filter(([k]) => k !== 'io.buildah.version'));
        return Object.fromEntries(fields.map((f) => [f, c[f]]));
      };
      expect(pick(ours)).toEqual(pick(theirs));
      expect(pick(ours).Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5e9, Timeout: 2e9, Retries: 3 });
      const history = (img: PodmanImage) => img.History.map((h) => ({
        // COPY's `file:<hash>` is each builder's own digest of the files (Docker's tarsum, buildah's own).
        created_by: (h.created_by ?? '').replace(/ (file|dir):[0-9a-f]{64} /, ' $1:<hash> '),
        empty_layer: h.empty_layer === true,
      }));
      const [h1, h2] = [history(ours), history(theirs)];
      expect(h1.length).toBe(h2.length);
      for (const [i, h] of h2.entries()) {
        // WORKDIR of a folder the image lacks: Docker's classic builder commits the mkdir as a layer (so does
        // Berth); buildah makes the folder without a layer of its own. Docker and Podman differ there.
        if (h.created_by.includes(' WORKDIR ')) expect(h1[i]).toEqual({ created_by: h.created_by, empty_layer: false });
        else expect(h1[i], `history ${i}`).toEqual(h);
      }
    } finally {
      await execa('podman', ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp'),
        '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', 'rmi', '-a', '-f'], { reject: false, timeout: 60_000 });
      unmountUnder(dir);
      await fsp.rm(dir, { recursive: true, force: true });
    }
    await t.ok('rmi', 'interop:1');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 240_000);
});
