/**
 * Issue 19, the last verbs and flags through -H unix://: login/logout (the login kept in this machine's
 * store, checked by the remote, sent with each pull and push), image import, system prune, and the
 * client-side flags of run/create. The service serves the test engine's own store in this process, so the
 * registry on 127.0.0.1 is reachable from the remote's side, and each remote command can be checked
 * against the same command run locally on that store.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type RemoteEngineApi } from '../../src/api/index.js';
import { NotFoundError } from '../../src/errors.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startService, type TestService } from '../helpers/service.js';
import { cleanEnv, remoteCli } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

const PASSWORD = 'Remote-Login-4471';

let t: TestEngine;
let svc: TestService;
let home: string;
let cli: ReturnType<typeof remoteCli>;
let reg: TestRegistry;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'berth-rverbs-'));
  [t, reg] = await Promise.all([testEngine(3800 + (process.pid % 50)), startRegistry({ port: 15240, htpasswd: [{ user: 'rita', password: PASSWORD }] })]);
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  // HOME and DOCKER_CONFIG of the test's own: no real login is read or written on this side.
  cli = remoteCli({ XDG_CONFIG_HOME: home, HOME: home, DOCKER_CONFIG: path.join(home, 'docker') });
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await svc?.close();
  await cleanupAll(t, home);
}, 60_000);

const remote = (...args: string[]) => cli('-H', svc.host, ...args);

describe('login and logout through -H unix://', () => {
  it('the remote checks the login, this machine keeps it, and pull and push send it', async () => {
    const authfile = path.join(home, 'berth', 'auth.json');
    const ref = `${reg.host}/private/busybox:1`;
    // Without a login the registry refuses the push, as locally (125).
    expect((await remote('tag', 'busybox', ref)).exitCode).toBe(0);
    const anon = await remote('push', ref);
    expect(anon.exitCode).toBe(125);

    const bad = await remote('login', '-u', 'rita', '-p', 'Wrong-Secret-909', reg.host);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('incorrect username or password');
    expect(bad.stderr).toContain(reg.host);
    expect(bad.stdout + bad.stderr).not.toContain('Wrong-Secret-909');
    await expect(stat(authfile)).rejects.toMatchObject({ code: 'ENOENT' });

    const ok = await remote('login', '-u', 'rita', '-p', PASSWORD, reg.host);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('Login Succeeded');
    expect(ok.stderr).toContain(`stored unencrypted in ${authfile}`);
    expect(JSON.parse(await readFile(authfile, 'utf8'))).toEqual({ auths: { [reg.host]: { auth: Buffer.from(`rita:${PASSWORD}`).toString('base64') } } });
    expect((await stat(authfile)).mode & 0o777).toBe(0o600);

    const pushed = await remote('push', ref);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/^1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    expect((await remote('rmi', ref)).exitCode).toBe(0);
    const pulled = await remote('pull', ref);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect((await remote('rmi', ref)).exitCode).toBe(0);

    const out = await remote('logout', reg.host);
    expect([out.exitCode, out.stdout]).toEqual([0, `Removing login credentials for ${reg.host}`]);
    const again = await remote('logout', reg.host);
    expect([again.exitCode, again.stdout]).toEqual([0, `Not logged in to ${reg.host}`]);
    // The remote kept nothing: without this machine's login its pull is refused.
    const refused = await remote('pull', ref);
    expect(refused.exitCode).toBe(125);
    expect(await t.cli('images', '-q', ref).then((r) => r.stdout.trim())).toBe('');
  }, 120_000);

  it('--tls-verify=false and an empty password are refused before anything is sent', async () => {
    const insecure = await remote('login', '-u', 'rita', '-p', PASSWORD, '--tls-verify=false', reg.host);
    expect(insecure.exitCode).toBe(1);
    expect(insecure.stderr).toContain('insecure-registries');
    const empty = await remote('login', '-u', 'rita', '-p', '', reg.host);
    expect(empty.exitCode).toBe(1);
    expect(empty.stderr).toContain('the password is empty');
    // The first test logged out: the file holds no login, and these left none.
    expect(JSON.parse(await readFile(path.join(home, 'berth', 'auth.json'), 'utf8')).auths).toEqual({});
  });
});

describe('image import through -H unix://', () => {
  it('a file or stdin becomes the same image as a local import makes; bad input leaves nothing', async () => {
    const dir = await mkdtemp(path.join(home, 'rootfs-'));
    await writeFile(path.join(dir, 'hello.txt'), 'hi from import\n');
    const tarFile = path.join(home, 'rootfs.tar');
    await execa('tar', ['-C', dir, '-cf', tarFile, '.']);
    const before = await t.ok('images', '-aq', '--no-trunc');

    const made = await remote('import', '-c', 'CMD ["/hello"]', '-m', 'from afar', tarFile, 'imported:r1');
    expect(made.exitCode, made.stderr).toBe(0);
    const local = await t.cli('import', tarFile, 'imported:l1');
    expect(made.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(local.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
    const info = JSON.parse(await t.ok('image', 'inspect', 'imported:r1'))[0];
    expect(info.Id).toBe(made.stdout);
    expect(info.Config.Cmd).toEqual(['/hello']);
    expect(info.RootFS.Layers).toEqual(JSON.parse(await t.ok('image', 'inspect', 'imported:l1'))[0].RootFS.Layers);
    expect(await t.ok('history', '--format', '{{.Comment}}', 'imported:r1')).toBe('from afar');
    // Without -m, the history names the file, as a local import does.
    const named = await remote('import', tarFile, 'imported:r2');
    expect(named.exitCode, named.stderr).toBe(0);
    expect(await t.ok('history', '--format', '{{.Comment}}', 'imported:r2')).toBe(`Imported from ${tarFile}`);

    const piped = await execa(BIN, ['-H', svc.host, 'import', '-', 'imported:r3'], { reject: false, timeout: 60_000, inputFile: tarFile, env: cleanEnv({ HOME: home }), extendEnv: false });
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(await t.ok('images', '-q', 'imported:r3')).toHaveLength(12);

    // The docker CLI's import reaches the same endpoint.
    const docker = await svc.docker(['import', tarFile, 'imported:d1']);
    expect(docker.exitCode, String(docker.stderr)).toBe(0);
    expect(String(docker.stdout).trim()).toMatch(/^sha256:[0-9a-f]{64}$/);

    const missing = await remote('import', path.join(home, 'nope.tar'));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`cannot read ${path.join(home, 'nope.tar')}`);
    const folder = await remote('import', dir);
    expect(folder.exitCode).toBe(1);
    expect(folder.stderr).toContain(`${dir} is a folder, not a tar file`);
    const junk = path.join(home, 'junk.tar');
    await writeFile(junk, 'this is not a tar archive at all, just some words\n'.repeat(40));
    const refused = await remote('import', junk, 'imported:junk');
    expect(refused.exitCode).toBe(1);
    const badChange = await remote('import', '-c', 'FROB x', tarFile, 'imported:bad');
    expect(badChange.exitCode).toBe(1);
    expect(badChange.stderr).toContain('FROB');

    for (const tag of ['imported:r1', 'imported:l1', 'imported:r2', 'imported:r3', 'imported:d1']) expect((await t.cli('rmi', tag)).exitCode).toBe(0);
    expect(await t.ok('images', '-aq', '--no-trunc')).toBe(before);
  }, 120_000);
});

describe('system prune through -H unix://', () => {
  it('containers, networks, anonymous volumes (--volumes) and images, as locally; a bad filter removes nothing', async () => {
    expect((await remote('create', '--name', 'sp-stopped', '-v', '/data', 'busybox', 'true')).exitCode).toBe(0);
    const net = await remote('network', 'create', 'sp-net');
    expect(net.exitCode, net.stderr).toBe(0);
    const volume = JSON.parse(await t.ok('inspect', 'sp-stopped'))[0].Mounts[0].Name as string;

    const bad = await remote('system', 'prune', '-f', '--filter', 'colour=red');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain("invalid filter 'colour'");
    expect(await t.ok('ps', '-aq', '--filter', 'name=sp-stopped')).toHaveLength(12);

    const res = await remote('system', 'prune', '-f', '--volumes');
    expect(res.exitCode, res.stderr).toBe(0);
    const id = (await t.cli('inspect', 'sp-stopped')).exitCode;
    expect(id).toBe(1);
    expect(res.stdout).toMatch(/^Deleted Containers:\n[0-9a-f]{64}\n\nDeleted Networks:\nsp-net\n\nDeleted Volumes:\n/);
    expect(res.stdout).toContain(`\n${volume}\n`);
    expect(res.stdout).toMatch(/Total reclaimed space: .+$/);
    expect((await t.cli('volume', 'inspect', volume)).exitCode).toBe(1);

    // Without --volumes the volumes stay, as locally; the prompt says what goes.
    expect((await remote('create', '--name', 'sp-two', '-v', '/data', 'busybox', 'true')).exitCode).toBe(0);
    const kept = JSON.parse(await t.ok('inspect', 'sp-two'))[0].Mounts[0].Name as string;
    const again = await remote('system', 'prune', '-f');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('Deleted Volumes');
    expect((await t.cli('volume', 'inspect', kept)).exitCode).toBe(0);
    expect((await t.cli('volume', 'rm', kept)).exitCode).toBe(0);
    const asked = await execa(BIN, ['-H', svc.host, 'system', 'prune', '--volumes'], { reject: false, timeout: 60_000, input: 'n\n', env: cleanEnv({ HOME: home }), extendEnv: false });
    expect(asked.exitCode, asked.stderr).toBe(0);
    expect(asked.stdout).toContain('  - all anonymous volumes not used by at least one container');

    // The same output locally (--volumes is new on both sides).
    expect((await t.cli('create', '--name', 'sp-three', '-v', '/data', 'busybox', 'true')).exitCode).toBe(0);
    const third = JSON.parse(await t.ok('inspect', 'sp-three'))[0].Mounts[0].Name as string;
    const local = await t.cli('system', 'prune', '-f', '--volumes');
    expect(local.exitCode, local.stderr).toBe(0);
    expect(local.stdout).toMatch(new RegExp(`^Deleted Containers:\n[0-9a-f]{64}\n\nDeleted Volumes:\n${third}\n\nTotal reclaimed space: .+$`));
  }, 120_000);
});

describe('the API\'s statPath through a remote engine', () => {
  it('answers the stat the local engine gives; a missing path is NotFound', async () => {
    const remoteEngine = new Engine({ host: svc.host });
    try {
      expect((await remote('create', '--name', 'st1', 'busybox', 'true')).exitCode).toBe(0);
      for (const p of ['/etc/passwd', '/tmp', '/bin/sh', '/']) expect(await remoteEngine.containers.statPath('st1', p), p).toEqual(await t.engine.containers.statPath('st1', p));
      await expect(remoteEngine.containers.statPath('st1', '/no/such')).rejects.toBeInstanceOf(NotFoundError);
      await expect(remoteEngine.containers.statPath('no-such-ctr', '/')).rejects.toMatchObject({ kind: 'container' });
    } finally {
      (remoteEngine as unknown as RemoteEngineApi).close();
      await t.cli('rm', '-f', 'st1');
    }
  });
});

describe('run/create flags read or written on this side, through -H unix://', () => {
  it('--env-file, --label-file, --cidfile and port ranges make the container the same flags make locally', async () => {
    const envFile = path.join(home, 'vars.env');
    const labelFile = path.join(home, 'labels.txt');
    await writeFile(envFile, '# comment\nFROM_FILE=1\nSHARED=file\n');
    await writeFile(labelFile, 'lf=1\nshared=file\n');
    const flags = ['--env-file', envFile, '-e', 'SHARED=flag', '--label-file', labelFile, '-l', 'shared=flag', '-p', '18000-18001:80-81', '-p', '127.0.0.1:18010-18012:90/udp', 'busybox', 'true'];
    const cid = path.join(home, 'made.cid');
    const made = await remote('create', '--name', 'cf-remote', '--cidfile', cid, ...flags);
    expect(made.exitCode, made.stderr).toBe(0);
    expect(await readFile(cid, 'utf8')).toBe(made.stdout.trim());
    expect((await t.cli('create', '--name', 'cf-local', ...flags)).exitCode).toBe(0);
    const [r, l] = [JSON.parse(await t.ok('inspect', 'cf-remote'))[0], JSON.parse(await t.ok('inspect', 'cf-local'))[0]];
    expect(r.Id).toBe(made.stdout.trim());
    const env = (c: { Config: { Env: string[] } }) => c.Config.Env.filter((e) => !e.startsWith('HOSTNAME='));
    expect(env(r)).toEqual(env(l));
    expect(r.Config.Env).toEqual(expect.arrayContaining(['FROM_FILE=1', 'SHARED=flag']));
    expect(r.Config.Labels).toEqual(l.Config.Labels);
    expect(r.Config.Labels).toMatchObject({ lf: '1', shared: 'flag' });
    // The published ports are the record's network plan until a start binds them.
    const plan = async (id: string) => JSON.parse(await readFile(path.join(t.root, 'containers', id, 'container.json'), 'utf8')).config.network;
    const remotePlan = await plan(r.Id);
    expect(remotePlan).toEqual(await plan(l.Id));
    expect(JSON.stringify(remotePlan)).toContain('18012');
    await t.cli('rm', '-f', 'cf-remote', 'cf-local');
  }, 60_000);

  it('a missing or unreadable file, a cidfile that exists and a bad range are refused as locally, leaving nothing', async () => {
    const before = await t.ok('ps', '-aq');
    const dir = await mkdtemp(path.join(home, 'adir-'));
    const cid = path.join(home, 'bad.cid');
    for (const [flags, words] of [
      [['--env-file', path.join(home, 'none.env')], `cannot read ${path.join(home, 'none.env')}: ENOENT`],
      [['--env-file', dir], `cannot read ${dir}: EISDIR`],
      [['--label-file', path.join(home, 'none.labels')], 'cannot read'],
      [['-p', '8000-8001:80-82'], 'invalid ranges specified for container and host Ports'],
      [['--pull', 'sometimes'], '"sometimes" is not missing, always or never'],
    ] as [string[], string][]) {
      const res = await remote('run', '--cidfile', cid, ...flags, 'busybox', 'true');
      expect(res.exitCode, flags.join(' ')).toBe(125);
      expect(res.stderr, flags.join(' ')).toContain(words);
      await expect(stat(cid)).rejects.toMatchObject({ code: 'ENOENT' });
    }
    const badLabels = path.join(home, 'bad.labels');
    await writeFile(badLabels, 'ok=1\nbad name=2\n');
    const labels = await remote('create', '--label-file', badLabels, 'busybox');
    expect(labels.exitCode).toBe(125);
    expect(labels.stderr).toContain(`${badLabels} line 2: label name "bad name" contains whitespace`);
    await writeFile(cid, 'someone else\'s\n');
    const taken = await remote('create', '--cidfile', cid, 'busybox');
    expect(taken.exitCode).toBe(125);
    expect(taken.stderr).toContain('container ID file found');
    expect(await readFile(cid, 'utf8')).toBe('someone else\'s\n');
    // A create the remote refuses removes the cidfile it claimed.
    const refused = await remote('create', '--cidfile', path.join(home, 'refused.cid'), '--network', 'no-such-net', 'busybox');
    expect(refused.exitCode).toBe(125);
    await expect(stat(path.join(home, 'refused.cid'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await t.ok('ps', '-aq')).toBe(before);
  }, 60_000);

  it('--pull never, missing (the default) and always act on this side, with this machine\'s login', async () => {
    const ref = `${reg.host}/pulls/busybox:1`;
    expect((await remote('login', '-u', 'rita', '-p', PASSWORD, reg.host)).exitCode).toBe(0);
    try {
      expect((await remote('tag', 'busybox', ref)).exitCode).toBe(0);
      expect((await remote('push', ref)).exitCode).toBe(0);
      expect((await remote('rmi', ref)).exitCode).toBe(0);

      const never = await remote('create', '--pull', 'never', '--name', 'pn', ref);
      expect(never.exitCode).toBe(125);
      expect(never.stderr).toContain(`no such image: ${ref}`);
      expect(await t.cli('images', '-q', ref).then((r) => r.stdout.trim())).toBe('');

      const missing = await remote('run', '--rm', ref, 'echo', 'pulled');
      expect(missing.exitCode, missing.stderr).toBe(0);
      expect(missing.stdout).toBe('pulled');
      expect(missing.stderr).toContain(`Unable to find image '${ref}' locally`);
      expect(await t.ok('images', '-q', ref)).toHaveLength(12);

      const always = await remote('create', '--pull', 'always', '--name', 'pa', ref);
      expect(always.exitCode, always.stderr).toBe(0);
      expect(always.stderr).toMatch(/Digest: sha256:[0-9a-f]{64}|Image is up to date/);
      await t.cli('rm', '-f', 'pa');
      expect((await remote('rmi', ref)).exitCode).toBe(0);
    } finally {
      await remote('logout', reg.host);
    }
  }, 120_000);
});

describe('pull --all-tags through -H unix://', () => {
  it('pulls every tag of the repository, printing the repository at the end as locally; a tag with it is refused', async () => {
    const repo = `${reg.host}/alltags/busybox`;
    expect((await remote('login', '-u', 'rita', '-p', PASSWORD, reg.host)).exitCode).toBe(0);
    try {
      for (const tag of ['1', '2']) {
        expect((await remote('tag', 'busybox', `${repo}:${tag}`)).exitCode).toBe(0);
        expect((await remote('push', `${repo}:${tag}`)).exitCode).toBe(0);
        expect((await remote('rmi', `${repo}:${tag}`)).exitCode).toBe(0);
      }
      const pulled = await remote('pull', '--all-tags', repo);
      expect(pulled.exitCode, pulled.stderr).toBe(0);
      expect(pulled.stdout.split('\n').at(-1)).toBe(repo);
      expect(pulled.stdout).toMatch(/^1: Pulling from alltags\/busybox$/m);
      expect(pulled.stdout).toMatch(/^2: Pulling from alltags\/busybox$/m);
      expect((await t.ok('images', '--format', '{{.Tag}}', repo)).split('\n').sort()).toEqual(['1', '2']);
      const tagged = await remote('pull', '--all-tags', `${repo}:1`);
      expect(tagged.exitCode).toBe(125);
      expect(tagged.stderr).toContain('a tag or digest cannot be given with --all-tags');
      // The local engine says the same.
      const local = await t.cli('pull', '--all-tags', `${repo}:1`);
      expect([local.exitCode, local.stderr.includes('a tag or digest cannot be given with --all-tags')]).toEqual([125, true]);
      for (const tag of ['1', '2']) expect((await remote('rmi', `${repo}:${tag}`)).exitCode).toBe(0);
    } finally {
      await remote('logout', reg.host);
    }
  }, 120_000);
});

describe('save --format oci-* and load of an OCI folder through -H unix://', () => {
  it('writes the archive and folder a local save writes, and loads the folder back', async () => {
    const [rTar, lTar, rDir, lDir] = ['r.oci.tar', 'l.oci.tar', 'r-oci', 'l-oci'].map((n) => path.join(home, n)) as [string, string, string, string];
    const saved = await remote('save', '--format', 'oci-archive', '-o', rTar, 'busybox');
    expect(saved.exitCode, saved.stderr).toBe(0);
    expect((await t.cli('save', '--format', 'oci-archive', '-o', lTar, 'busybox')).exitCode).toBe(0);
    expect(await readFile(rTar)).toEqual(await readFile(lTar));
    const dir = await remote('save', '--format', 'oci-dir', '-o', rDir, 'busybox');
    expect(dir.exitCode, dir.stderr).toBe(0);
    expect((await t.cli('save', '--format', 'oci-dir', '-o', lDir, 'busybox')).exitCode).toBe(0);
    const same = await execa('diff', ['-r', rDir, lDir], { reject: false });
    expect(same.exitCode, same.stdout).toBe(0);
    expect(await readFile(path.join(rDir, 'index.json'), 'utf8')).toContain('org.opencontainers.image.ref.name');

    const id = await t.ok('images', '-q', '--no-trunc', 'busybox');
    expect((await t.cli('tag', 'busybox', 'oci-folder:1')).exitCode).toBe(0);
    expect((await remote('save', '--format', 'oci-dir', '-o', path.join(home, 'tagged'), 'oci-folder:1')).exitCode).toBe(0);
    expect((await t.cli('rmi', 'oci-folder:1')).exitCode).toBe(0);
    const loaded = await remote('load', '-i', path.join(home, 'tagged'));
    expect(loaded.exitCode, loaded.stderr).toBe(0);
    expect(loaded.stdout).toBe('Loaded image: oci-folder:1');
    expect(await t.ok('images', '-q', '--no-trunc', 'oci-folder:1')).toBe(id);
    expect((await t.cli('rmi', 'oci-folder:1')).exitCode).toBe(0);
  }, 120_000);

  it('refuses a folder that is no image, an oci-dir to stdout, and a remote that sends docker-archive instead', async () => {
    const empty = await mkdtemp(path.join(home, 'noimage-'));
    await writeFile(path.join(empty, 'readme'), 'not an image\n');
    const notImage = await remote('load', '-i', empty);
    expect(notImage.exitCode).toBe(1);
    expect(notImage.stderr).toContain(`${empty} is not an image archive`);
    const stdout = await remote('save', '--format', 'oci-dir', 'busybox');
    expect(stdout.exitCode).toBe(1);
    expect(stdout.stderr).toContain('cowardly refusing');

    // A dockerd ignores format= and sends docker-archive: the client says so and writes nothing.
    const sock = path.join(home, 'fake-dockerd.sock');
    const fake = http.createServer((req, res) => {
      if (req.url?.includes('/images/get')) res.writeHead(200, { 'Content-Type': 'application/x-tar' }).end(Buffer.alloc(1024));
      else res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"Id":"sha256:00"}');
    });
    await new Promise<void>((resolve) => fake.listen(sock, resolve));
    try {
      const out = path.join(home, 'from-docker.tar');
      const res = await cli('-H', `unix://${sock}`, 'save', '--format', 'oci-archive', '-o', out, 'busybox');
      expect(res.exitCode).toBe(1);
      expect(res.stderr).toContain('saved a docker-archive, not the oci-archive asked for');
      await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
      const folder = path.join(home, 'from-docker-dir');
      expect((await cli('-H', `unix://${sock}`, 'save', '--format', 'oci-dir', '-o', folder, 'busybox')).exitCode).toBe(1);
      await expect(stat(folder)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
  }, 60_000);
});

describe('build --secret through -H unix://', () => {
  it('the RUN step reads the secret; the image, the context and the remote keep nothing of it', async () => {
    const ctx = await mkdtemp(path.join(home, 'sctx-'));
    await writeFile(path.join(ctx, 'Dockerfile'), [
      'FROM busybox',
      'COPY . /ctx',
      // The value itself is not in the Dockerfile (which COPY keeps and the history names): its digest is.
      `RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | grep -q ${createHash('sha256').update('s3cret-value').digest('hex')} && echo ok > /checked`,
      '',
    ].join('\n'));
    await writeFile(path.join(ctx, 'app.txt'), 'app\n');
    const secret = path.join(home, 'tok.txt');
    await writeFile(secret, 's3cret-value', { mode: 0o600 });
    // The service keeps them in the store's build temp folder, where a killed build's folders are swept.
    const leftovers = async () => (await execa('sh', ['-c', `ls -d ${t.root}/build-tmp/berth-context-*-secrets-* 2>/dev/null || true`])).stdout;
    const before = await leftovers();
    expect(before).toBe('');

    const built = await remote('build', '--secret', `id=tok,src=${secret}`, '-t', 'with-secret:1', ctx);
    expect(built.exitCode, built.stderr + built.stdout).toBe(0);
    const look = await remote('run', '--rm', 'with-secret:1', 'sh', '-c', 'cat /checked; ls -A /ctx; ls /run/secrets 2>&1 | wc -l');
    expect(look.exitCode, look.stderr).toBe(0);
    expect(look.stdout.split('\n')).toEqual(['ok', 'Dockerfile', 'app.txt', '0']);
    const saved = path.join(home, 'with-secret.tar');
    expect((await remote('save', '-o', saved, 'with-secret:1')).exitCode).toBe(0);
    const grep = await execa('grep', ['-c', 's3cret-value', saved], { reject: false });
    expect(grep.stdout.trim()).toBe('0');
    expect(await leftovers()).toBe(before);
    expect((await remote('rmi', 'with-secret:1')).exitCode).toBe(0);
  }, 120_000);

  it('a missing secret, a folder as a secret and a context on stdin are refused before anything is sent', async () => {
    const ctx = await mkdtemp(path.join(home, 'sctx2-'));
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN --mount=type=secret,id=tok true\n');
    const missing = await remote('build', '--secret', `id=tok,src=${path.join(home, 'no-secret')}`, ctx);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(`no such file: ${path.join(home, 'no-secret')} (secret "tok")`);
    const folder = await remote('build', '--secret', `id=tok,src=${ctx}`, ctx);
    expect(folder.exitCode).toBe(1);
    expect(folder.stderr).toContain(`${ctx} (secret "tok") is not a file`);
    const local = await t.cli('build', '--secret', `id=tok,src=${ctx}`, ctx);
    expect([local.exitCode, local.stderr.includes('is not a file')]).toEqual([1, true]);
    const tarFile = path.join(home, 'ctx.tar');
    await execa('tar', ['-C', ctx, '-cf', tarFile, '.']);
    await writeFile(path.join(home, 'ok-secret'), 'x');
    const piped = await execa(BIN, ['-H', svc.host, 'build', '--secret', `id=tok,src=${path.join(home, 'ok-secret')}`, '-'], { reject: false, timeout: 60_000, inputFile: tarFile, env: cleanEnv({ HOME: home }), extendEnv: false });
    expect(piped.exitCode).toBe(1);
    expect(piped.stderr).toContain('with a context on stdin, the secrets are not sent to a remote host');

    // The service's side: a secret the tar does not carry, or one named outside its folder, is a 400.
    const noFile = await svc.request('POST', `/v1.41/build?secrets=${encodeURIComponent('["tok"]')}`, await readFile(tarFile), { 'Content-Type': 'application/x-tar' });
    expect([noFile.status, noFile.json().message]).toEqual([400, 'the context sent no file for the secret tok']);
    const bad = await svc.request('POST', `/v1.41/build?secrets=${encodeURIComponent('["../x"]')}`, await readFile(tarFile), { 'Content-Type': 'application/x-tar' });
    expect(bad.status).toBe(400);
  }, 60_000);
});

describe('a remote build\'s pulls through -H unix://', () => {
  it('pull a private FROM image with this machine\'s login (X-Registry-Config), and fail without it', async () => {
    const ref = `${reg.host}/buildfrom/busybox:1`;
    const ctx = await mkdtemp(path.join(home, 'bctx-'));
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${ref}\nRUN echo built > /built\n`);
    expect((await remote('login', '-u', 'rita', '-p', PASSWORD, reg.host)).exitCode).toBe(0);
    let loggedIn = true;
    try {
      expect((await remote('tag', 'busybox', ref)).exitCode).toBe(0);
      expect((await remote('push', ref)).exitCode).toBe(0);
      expect((await remote('rmi', ref)).exitCode).toBe(0);
      const built = await remote('build', '-t', 'from-private:1', ctx);
      expect(built.exitCode, built.stderr + built.stdout).toBe(0);
      expect(await t.ok('images', '-q', ref)).toHaveLength(12);
      expect((await remote('rmi', 'from-private:1', ref)).exitCode).toBe(0);

      expect((await remote('logout', reg.host)).exitCode).toBe(0);
      loggedIn = false;
      const refused = await remote('build', '-t', 'from-private:2', ctx);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr + refused.stdout).toMatch(/unauthorized|authentication required|401/i);
      expect((await t.cli('images', '-q', 'from-private:2')).stdout.trim()).toBe('');
    } finally {
      if (loggedIn) await remote('logout', reg.host);
    }
  }, 120_000);
});
