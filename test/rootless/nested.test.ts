/**
 * Rootless Berth with a container user namespace nested in its own (issue 18): --userns keep-id (the user
 * is itself inside), --userns auto and --uidmap (ranges of Berth's namespace, 0 = the user), as a real
 * non-root user this file creates; a published port, bind-mount owners on the host, nothing left behind.
 */
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGet } from '../helpers/http.js';
import { createRootlessUser, openTun, until, type RootlessUser } from '../helpers/rootless.js';

const PORT = 19000 + Math.floor(Math.random() * 1000);

/** /proc/self/uid_map's lines as [inside, outside, size] numbers. */
const mapLines = (text: string) => text.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));

describe('rootless berth: user namespaces nested in its own', () => {
  let u: RootlessUser;
  let closeTun: () => void = () => {};
  const store = () => path.join(u.home, '.local/share/berth');

  beforeAll(async () => {
    closeTun = openTun();
    u = await createRootlessUser({ homeMode: 0o755 });
    u.addSubIds();
  });

  afterAll(async () => {
    try {
      await u?.remove();
    } finally {
      closeTun();
    }
  });

  /** Only the pause process runs; no mount of the store, netns or shifted copy is left. */
  async function nothingLeft(): Promise<void> {
    // rm -f does not wait for the monitor's exit hook (berth container cleanup), which finds nothing to do.
    const left = await until(async () => {
      const pids = await u.live();
      expect(pids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')).join('\n')).toBe('catatonit -P ');
      return pids;
    });
    expect(readFileSync(`/proc/${left[0]}/mountinfo`, 'utf8')).not.toContain(store());
    expect(readdirSync(path.join(store(), 'layers/shifted'))).toEqual([]);
    expect(readdirSync(path.join(`/tmp/berth-run-${u.uid}`, 'netns')).filter((n) => n !== '.userns')).toEqual([]);
  }

  it('keep-id: the user is itself inside, owns what it writes to a bind mount, and -p still answers', async () => {
    const out = path.join(u.home, 'out');
    mkdirSync(out);
    chownSync(out, u.uid, u.gid);
    const r = await u.berth('run', '--rm', '--userns', 'keep-id', '-v', `${out}:/out`, 'busybox', 'sh', '-c', 'id -u; id -g; whoami; echo $HOME; touch /out/mine');
    expect(r).toMatchObject({ code: 0, stdout: `${u.uid}\n${u.gid}\n${u.name}\n${u.home}\n`, stderr: '' });
    expect(statSync(path.join(out, 'mine'))).toMatchObject({ uid: u.uid, gid: u.gid });
    // The rest of the container's ids: 0 from the user's first subordinate id on.
    const map = await u.berth('run', '--rm', '--network', 'none', '--userns', 'keep-id', '--user', '0', 'busybox', 'cat', '/proc/self/uid_map');
    expect(mapLines(map.stdout)).toEqual([[0, 1, u.uid], [u.uid, 0, 1], [u.uid + 1, u.uid + 1, 65536 - u.uid]]);

    const run = await u.berth('run', '-d', '--name', 'web', '--userns', 'keep-id', '-p', `127.0.0.1:${PORT}:8080`, 'busybox', 'sh', '-c',
      'mkdir -p /tmp/www && echo hello-keep-id > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www');
    expect(run.code, run.stderr).toBe(0);
    try {
      expect(await until(() => httpGet(PORT, 5000))).toBe('hello-keep-id\n');
      expect((await u.berth('exec', 'web', 'id', '-u')).stdout).toBe(`${u.uid}\n`);
      expect((await u.berth('inspect', '-f', '{{.HostConfig.UsernsMode}}', 'web')).stdout).toBe('keep-id\n');
    } finally {
      expect((await u.berth('rm', '-f', 'web')).code).toBe(0);
    }
    await expect(httpGet(PORT, 2000)).rejects.toThrow();
    await nothingLeft();
  });

  it('auto and --uidmap: ranges of the user\'s namespace, never shared, given back at rm', async () => {
    // Berth made ~/.local/share 0700: the root of an auto range is not the user, and must pass it.
    const refused = await u.berth('run', '--rm', '--network', 'none', '--userns', 'auto:size=30000', 'busybox', 'true');
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/\.local\/share \(mode 0700\) cannot be passed by its group.*chmod g\+x/s);
    for (const dir of ['.local', '.local/share']) chmodSync(path.join(u.home, dir), 0o711);
    const shared = path.join(u.home, 'shared');
    mkdirSync(shared, { mode: 0o777 });
    chmodSync(shared, 0o777);

    for (const name of ['a1', 'a2']) {
      const r = await u.berth('run', '-d', '--name', name, '--userns', 'auto:size=30000', '-v', `${shared}:/s`, 'busybox', 'sh', '-c', `touch /s/${name}; exec sleep 300`);
      expect(r.code, r.stderr).toBe(0);
    }
    try {
      const maps = await Promise.all(['a1', 'a2'].map(async (n) => mapLines((await u.berth('exec', n, 'cat', '/proc/self/uid_map')).stdout)));
      expect(maps).toEqual([[[0, 1, 30000]], [[0, 30001, 30000]]]);
      // Container root is Berth's id 1 or 30001: the user's first subordinate id, or 30000 past it.
      await until(async () => statSync(path.join(shared, 'a2')));
      expect(statSync(path.join(shared, 'a1')).uid).toBe(u.subStart!);
      expect(statSync(path.join(shared, 'a2')).uid).toBe(u.subStart! + 30000);
      const full = await u.berth('run', '--rm', '--network', 'none', '--userns', 'auto:size=30000', 'busybox', 'true');
      expect(full.code).toBe(125);
      expect(full.stderr).toContain('no free range of 30000 ids');
      // Through slirp4netns too: the netns belongs to the container's namespace.
      const fixed = await u.berth('run', '--rm', '--uidmap', '0:60001:5000', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; ip -4 addr show tap0 | grep -c 10.0.2.100');
      expect(fixed.code, fixed.stderr).toBe(0);
      expect(fixed.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual(['0 60001 5000', '1']);
    } finally {
      expect((await u.berth('rm', '-f', 'a1', 'a2')).code).toBe(0);
    }
    const past = await u.berth('run', '--rm', '--uidmap', '0:1:70000', 'busybox', 'true');
    expect(past.code).toBe(125);
    expect(past.stderr).toContain('goes past the 65537 ids of your user namespace');
    const ranges = JSON.parse(readFileSync(path.join(u.home, '.local/share/berth-userns/ranges.json'), 'utf8')) as { entries: unknown[] };
    expect(ranges.entries).toEqual([]);
    expect((await u.berth('run', '--rm', '--network', 'none', '--userns', 'auto:size=30000', 'busybox', 'true')).code).toBe(0);
    await nothingLeft();
  });

  it('still refuses userns-remap, saying what to give instead', async () => {
    const conf = path.join(u.home, '.config/berth');
    expect((await u.as('mkdir', '-p', conf)).code).toBe(0);
    expect((await u.as('sh', '-c', `echo '{"userns-remap": "default"}' > ${conf}/berth.json`)).code).toBe(0);
    const r = await u.berth('run', '--rm', '--network', 'none', 'busybox', 'true');
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('rootless Berth does not support "userns-remap"');
    expect((await u.as('rm', `${conf}/berth.json`)).code).toBe(0);
    expect(await u.berth('system', 'reset', '-f')).toMatchObject({ code: 0, stderr: '' });
    expect(await u.live()).toEqual([]);
  });
});
