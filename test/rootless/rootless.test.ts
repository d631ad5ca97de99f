/**
 * Rootless Berth (issue 18) as a real non-root user this file creates: the user namespace from its
 * /etc/subuid lines, containers with slirp4netns, a published port on 127.0.0.1, refused limits, two users'
 * stores kept apart, and nothing of the user's left running after `system reset`.
 */
import { mkdirSync, chownSync, readdirSync, statSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../helpers/http.js';
import { createRootlessUser, openTun, until, type RootlessUser } from '../helpers/rootless.js';

const PORT = 18000 + Math.floor(Math.random() * 1000);

const get = (port: number) => httpGet(port, 5000);

describe('rootless berth', () => {
  let a: RootlessUser;
  let b: RootlessUser;
  let closeTun: () => void = () => {};

  beforeAll(async () => {
    closeTun = openTun();
    // A's home is 0755, as Debian's default: the store's own modes must keep B out.
    a = await createRootlessUser({ homeMode: 0o755 });
    b = await createRootlessUser();
  });

  afterAll(async () => {
    try {
      await Promise.all([a?.remove(), b?.remove()]);
    } finally {
      closeTun();
    }
  });

  it('names the /etc/subuid and /etc/subgid lines to add when the user has none', async () => {
    const r = await b.berth('ps');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`rootless Berth needs subordinate ids for user ${b.name}`);
    expect(r.stderr).toMatch(new RegExp(`the line "${b.name}:\\d+:65536" to /etc/subuid and the line "${b.name}:\\d+:65536" to /etc/subgid`));
    expect(await b.pids()).toEqual([]);
  });

  it('needs no user namespace of its own for a remote engine, nor for contexts', async () => {
    // A socket nobody serves: the error is the remote's, not the missing subordinate ids'.
    const remote = await b.berth('-H', `unix://${path.join(b.home, 'nobody.sock')}`, 'ps');
    expect(remote.code).not.toBe(0);
    expect(remote.stderr).not.toContain('subordinate ids');
    expect(remote.stderr).toContain('nobody.sock');
    const ls = await b.berth('context', 'ls');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('default');
    expect(await b.pids()).toEqual([]);
  });

  it('runs busybox echo hi from the embedded image, in the user namespace from /etc/subuid', async () => {
    a.addSubIds();
    const hi = await a.berth('run', '--rm', 'busybox', 'echo', 'hi');
    expect(hi).toMatchObject({ code: 0, stdout: 'hi\n' });
    const map = await a.berth('run', '--rm', '--network', 'none', 'busybox', 'cat', '/proc/self/uid_map');
    expect(map.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/))).toEqual([['0', String(a.uid), '1'], ['1', String(a.subStart), '65536']]);
  });

  it('keeps the store and runtime state in the user\'s own folders', () => {
    const root = path.join(a.home, '.local/share/berth');
    expect(statSync(root).uid).toBe(a.uid);
    const run = `/tmp/berth-run-${a.uid}`;
    expect(statSync(run)).toMatchObject({ uid: a.uid });
    expect(statSync(run).mode & 0o777).toBe(0o700);
  });

  it('refuses the API in a non-root process outside the namespace, saying how to enter it', async () => {
    const api = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/api/index.js');
    const script = `import { Engine } from ${JSON.stringify(api)}; try { await new Engine().containers.list({ all: true }); console.log('listed'); } catch (e) { console.log(e.name); }`;
    expect((await a.as(process.execPath, '--input-type=module', '-e', script)).stdout).toBe('BadStateError\n');
  });

  it('writes files with subordinate owners on the host', async () => {
    const dir = path.join(a.home, 'out');
    mkdirSync(dir);
    chownSync(dir, a.uid, a.gid);
    const r = await a.berth('run', '--rm', '--network', 'none', '-v', `${dir}:/out`, 'busybox', 'sh', '-c', 'touch /out/root /out/u && chown 1000:1000 /out/u');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(statSync(path.join(dir, 'root'))).toMatchObject({ uid: a.uid, gid: a.gid });
    expect(statSync(path.join(dir, 'u'))).toMatchObject({ uid: a.subStart! + 999, gid: a.subStart! + 999 });
  });

  it('says in info that it runs rootless, with its maps, network helper and storage driver', async () => {
    const r = await a.berth('info');
    expect(r.stdout).toContain(' Rootless: yes\n');
    expect(r.stdout).toContain(`  UID Map: 0:${a.uid}:1, 1:${a.subStart}:65536\n`);
    expect(r.stdout).toContain(' Network Helper: slirp4netns\n');
    expect(r.stdout).toContain(" Container User Namespace: the user's (rootless)\n");
    expect(r.stdout).toContain(' Storage Driver: overlay\n  Native Overlay Diff: true\n  userxattr: true\n');
  });

  it('keeps layer owners, whiteouts and opaque folders through commit, save and load', async () => {
    const archive = path.join(a.home, 'img.tar');
    expect((await a.berth('run', '--network', 'none', '--name', 'maker', 'busybox', 'sh', '-c', 'mkdir /d && touch /d/f && chown -R 1234:4321 /d && rm /bin/ls && rm -rf /sbin && mkdir /sbin && touch /sbin/only')).code).toBe(0);
    expect((await a.berth('commit', 'maker', 'owned:1')).code).toBe(0);
    expect((await a.berth('save', '-o', archive, 'owned:1')).code).toBe(0);
    expect((await a.berth('rm', 'maker')).code).toBe(0);
    expect((await a.berth('rmi', 'owned:1')).code).toBe(0);
    expect((await a.berth('load', '-i', archive)).code).toBe(0);
    const r = await a.berth('run', '--rm', '--network', 'none', 'owned:1', 'sh', '-c', 'stat -c "%u:%g" /d/f; test -e /bin/ls || echo gone; ls /sbin');
    // A deleted file (whiteout) and a folder made again (opaque: user.overlay.opaque in a user namespace).
    expect(r).toMatchObject({ code: 0, stdout: '1234:4321\ngone\nonly\n' });
    // On the host, the layer's file belongs to the subordinate ids 1234 and 4321 map to.
    const layers = path.join(a.home, '.local/share/berth/layers');
    const found = (await a.as('find', layers, '-path', '*/d/f', '-printf', '%U:%G\n')).stdout.trim().split('\n');
    expect(found).toContain(`${a.subStart! + 1233}:${a.subStart! + 4320}`);
  });

  it('cannot write a host file the user does not own, even through -v', async () => {
    const r = await a.berth('run', '--rm', '--network', 'none', '-v', '/etc:/hostetc', 'busybox', 'sh', '-c', 'echo x >> /hostetc/passwd || echo refused');
    expect(r.stdout).toBe('refused\n');
    expect(readFileSync('/etc/passwd', 'utf8')).not.toMatch(/^x$/m);
  });

  it('refuses cgroup limits, saying why', async () => {
    const r = await a.berth('run', '--rm', '--memory', '64m', 'busybox', 'true');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('rootless containers cannot have resource limits: this host uses cgroup v1');
    expect((await a.berth('ps', '-aq')).stdout).toBe('');
  });

  // Nested user namespaces (keep-id, auto, --uidmap) are no longer refused: test/rootless/nested.test.ts.
  it('refuses stats and limit updates, saying why; --restart updates', async () => {
    const c = await a.berth('run', '-d', '--name', 'idle', '--network', 'none', 'busybox', 'sleep', '300');
    expect(c.code, c.stderr).toBe(0);
    try {
      const stats = await a.berth('stats', '--no-stream', 'idle');
      expect(stats.code).toBe(1);
      expect(stats.stderr).toContain('no cgroup of their own');
      expect((await a.berth('update', '--memory', '64m', 'idle')).stderr).toContain('rootless');
      const restart = await a.berth('update', '--restart', 'always', 'idle');
      expect(restart.code, restart.stderr).toBe(0);
      expect((await a.berth('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', 'idle')).stdout.trim()).toBe('always');
    } finally {
      expect((await a.berth('rm', '-f', 'idle')).code).toBe(0);
    }
  });

  it('lists what it offers: slirp4netns (the default), host and none, never the bridge it cannot use', async () => {
    const ls = await a.berth('network', 'ls', '--format', '{{.Name}}/{{.Driver}}');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim().split('\n').sort()).toEqual(['host/host', 'none/none', 'slirp4netns/slirp4netns']);
    expect((await a.berth('network', 'ls', '-q', '--filter', 'driver=bridge')).stdout).toBe('');
    const bridge = await a.berth('network', 'inspect', 'bridge');
    expect(bridge.code).toBe(1);
    expect(bridge.stderr).toContain('rootless Berth has no bridge network');
    expect((await a.berth('network', 'inspect', '-f', '{{.Driver}}', 'slirp4netns')).stdout).toBe('slirp4netns\n');
  });

  it('refuses bridge networks and low ports with the reason', async () => {
    const net = await a.berth('network', 'create', 'n1');
    expect(net.code).not.toBe(0);
    expect(net.stderr).toContain('rootless Berth cannot create network "n1"');
    const low = await a.berth('run', '--rm', '-p', '80:80', 'busybox', 'true');
    expect(low.code).toBe(125);
    expect(low.stderr).toContain('below 1024');
  });

  it('runs a detached web server published on 127.0.0.1, with ps, logs, exec, stop and rm', async () => {
    const run = await a.berth('run', '-d', '--name', 'web', '-p', `127.0.0.1:${PORT}:80`, 'busybox', 'sh', '-c',
      'mkdir /www && echo hello-rootless > /www/index.html && echo started && exec httpd -f -p 80 -h /www');
    expect(run.code).toBe(0);
    expect(await until(() => get(PORT))).toBe('hello-rootless\n');
    expect((await a.berth('ps', '--format', '{{.Names}} {{.Ports}}')).stdout).toBe(`web 127.0.0.1:${PORT}->80/tcp\n`);
    expect((await a.berth('logs', 'web')).stdout).toBe('started\n');
    expect(await a.berth('exec', 'web', 'cat', '/proc/self/uid_map')).toMatchObject({ code: 0 });
    expect((await a.berth('exec', 'web', 'id', '-u')).stdout).toBe('0\n');
    expect((await a.berth('network', 'inspect', '-f', '{{range .Containers}}{{.Name}}{{end}}', 'slirp4netns')).stdout).toBe('web\n');
    expect((await a.berth('stop', '-t', '1', 'web')).code).toBe(0);
    await expect(get(PORT)).rejects.toThrow();
    expect((await a.berth('rm', 'web')).code).toBe(0);
    // Only the pause process is left: no slirp4netns, conmon or container process (zombies have ended;
    // only the machine's init, their parent now, has yet to reap them).
    const left = await a.live();
    expect(left).toHaveLength(1);
    expect(readFileSync(`/proc/${left[0]}/cmdline`, 'utf8').split('\0')[0]).toBe('catatonit');
    expect(readFileSync(`/proc/${left[0]}/mountinfo`, 'utf8')).not.toContain(path.join(a.home, '.local/share/berth'));
  });

  it('runs with the host\'s network, and refuses pause and top, which need a cgroup', async () => {
    const host = await a.berth('run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'test -d /sys/class/net/lo && echo ok');
    expect(host).toMatchObject({ code: 0, stdout: 'ok\n' });
    expect((await a.berth('run', '-d', '--network', 'none', '--name', 'frozen', 'busybox', 'sleep', '60')).code).toBe(0);
    const pause = await a.berth('pause', 'frozen');
    expect(pause.code).not.toBe(0);
    expect(pause.stderr).toContain('cannot be paused: it runs rootless, without a cgroup of its own');
    expect((await a.berth('top', 'frozen')).stderr).toContain('cannot be listed (top)');
    expect((await a.berth('rm', '-f', 'frozen')).code).toBe(0);
  });

  it('keeps two users\' stores apart', async () => {
    b.addSubIds();
    expect((await b.berth('run', '--rm', '--network', 'none', 'busybox', 'true')).code).toBe(0);
    const c = await a.berth('run', '-d', '--network', 'none', '--name', 'mine', 'busybox', 'sleep', '60');
    const id = c.stdout.trim();
    expect((await b.berth('ps', '-aq')).stdout).toBe('');
    const rootA = path.join(a.home, '.local/share/berth');
    expect((await b.as('ls', rootA)).code).not.toBe(0);
    expect((await b.as('cat', path.join(rootA, 'containers', id, 'ctr.log'))).code).not.toBe(0);
    expect((await b.as('ls', `/tmp/berth-run-${a.uid}`)).code).not.toBe(0);
    expect((await a.berth('rm', '-f', 'mine')).code).toBe(0);
  });

  it('a command killed while mapping the pause process, or after starting slirp4netns, leaks nothing', async () => {
    const reset = await a.berth('system', 'reset', '-f');
    expect(reset.code, reset.stderr + reset.stdout).toBe(0);
    expect(await a.live()).toEqual([]);
    const killed = await a.berthKilledAt('rootless.pause.before-map', 'ps');
    expect(killed.code).not.toBe(0);
    const orphan = await a.live();
    expect(orphan).toHaveLength(1);
    expect(readFileSync(`/proc/${orphan[0]}/uid_map`, 'utf8')).toBe('');
    expect((await a.berth('ps')).code).toBe(0);
    const pause = await a.live();
    expect(pause).toHaveLength(1);
    expect(pause[0]).not.toBe(orphan[0]);

    const port = PORT + 1;
    const crash = await a.berthKilledAt('container.run.after-slirp', 'run', '-d', '--name', 'crash', '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80');
    expect(crash.code, crash.stderr).toBe(137); // killed at the failpoint, not failed before it
    expect((await a.live()).length).toBeGreaterThan(1); // slirp4netns, recorded before the kill
    expect((await a.berth('rm', '-f', 'crash')).code).toBe(0);
    expect(await a.live()).toEqual(pause);
  });

  it('leaves nothing running after system reset', async () => {
    for (const u of [a, b]) {
      expect(await u.berth('system', 'reset', '-f')).toMatchObject({ code: 0, stderr: '' });
      expect(await u.live()).toEqual([]);
      expect(readdirSync(`/tmp/berth-run-${u.uid}`)).not.toContain('pause.pid');
    }
  });
});
