import { promises as fsp, readFileSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REGISTRY, SUBID_USER } from '../../src/userns/index.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

/**
 * Root Berth's user namespaces with real runc: owners seen from the host, the host-wide allocator across
 * roots, the shifted-layer cache, bind mounts, and the refusals. The `berth` lines of /etc/subuid and
 * /etc/subgid are added when missing (scripts/setup.sh adds them) and removed again if this file added them.
 */
const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const LINE = `${SUBID_USER}:1000000000:1000000000`;
let t: TestEngine;
let t2: TestEngine;
let tmp = '';
const added: string[] = [];

async function ensureSubid(file: string): Promise<void> {
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  if (text.split('\n').some((l) => l.startsWith(`${SUBID_USER}:`))) return;
  await fsp.appendFile(file, `${text && !text.endsWith('\n') ? '\n' : ''}${LINE}\n`);
  added.push(file);
}

beforeAll(async () => {
  await ensureSubid('/etc/subuid');
  await ensureSubid('/etc/subgid');
  t = await testEngine();
  t2 = await testEngine();
  tmp = await fsp.mkdtemp(path.join(tmpdir(), 'berth-userns-'));
  await fsp.chmod(tmp, 0o755);
  await t.engine.images.ensureDefault();
  await t2.engine.images.ensureDefault();
});

afterAll(async () => {
  try {
    for (const e of [t, t2]) {
      if (!e) continue;
      await e.cleanup();
      expect(await findLeaks(e.root, e.runroot, { final: true })).toEqual([]);
      expect(await registryEntries(e.root)).toEqual([]);
    }
  } finally {
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
    for (const file of added) {
      const text = await fsp.readFile(file, 'utf8');
      await fsp.writeFile(file, text.split('\n').filter((l) => l !== LINE).join('\n'));
    }
  }
});

async function registryEntries(root: string): Promise<{ container: string; uid: { start: number; size: number } }[]> {
  const reg = JSON.parse(await fsp.readFile(DEFAULT_REGISTRY, 'utf8').catch(() => '{"entries":[]}'));
  return reg.entries.filter((e: { root: string }) => e.root === root);
}

const inspect = async (e: TestEngine, id: string) => JSON.parse(await e.ok('inspect', id))[0];
const upperOf = (e: TestEngine, id: string) => path.join(e.root, 'snapshots', id, 'upper');

describe('--userns auto', () => {
  it('maps the container\'s root onto a range of its own: files, processes and uid_map seen from both sides', async () => {
    const id = await t.ok('run', '-d', '--userns', 'auto', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map > /uidmap; touch /made; exec sleep 300');
    const info = await inspect(t, id);
    expect(info.HostConfig.UsernsMode).toBe('auto');
    const [uidMap] = info.HostConfig.IDMappings.UidMap as string[];
    const [, hostStart, size] = uidMap!.split(':').map(Number);
    expect(size).toBe(65536);
    expect(hostStart).toBeGreaterThanOrEqual(1000000000);
    // the process, from the host
    const status = readFileSync(`/proc/${info.State.Pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${hostStart}\\s+${hostStart}`, 'm'));
    // the file it wrote, from the host (the upper dir), and uid_map from inside
    await expect.poll(() => existsSync(path.join(upperOf(t, id), 'made'))).toBe(true);
    expect(statSync(path.join(upperOf(t, id), 'made')).uid).toBe(hostStart);
    expect(readFileSync(path.join(upperOf(t, id), 'uidmap'), 'utf8').trim().split(/\s+/).map(Number)).toEqual([0, hostStart, 65536]);
    // the image's files are root's inside
    expect(await t.ok('exec', id, 'stat', '-c', '%u:%g', '/bin/busybox', '/etc/passwd')).toBe('0:0\n0:0');
    expect(await registryEntries(t.root)).toEqual([expect.objectContaining({ container: id, uid: { start: hostStart, size: 65536 } })]);
    await t.ok('rm', '-f', id);
    // the range is given back at rm
    expect(await registryEntries(t.root)).toEqual([]);
  });

  it('gives two containers of two roots disjoint ranges', async () => {
    const a = await t.ok('create', '--userns', 'auto:size=1000', 'busybox', 'true');
    const b = await t2.ok('create', '--userns', 'auto:size=1000', 'busybox', 'true');
    const [ra] = await registryEntries(t.root);
    const [rb] = await registryEntries(t2.root);
    expect(ra && rb).toBeTruthy();
    const disjoint = ra!.uid.start + ra!.uid.size <= rb!.uid.start || rb!.uid.start + rb!.uid.size <= ra!.uid.start;
    expect(disjoint, `${JSON.stringify(ra)} vs ${JSON.stringify(rb)}`).toBe(true);
    expect((await inspect(t, a)).HostConfig.UsernsMode).toBe('auto:size=1000');
    await t.ok('rm', a);
    await t2.ok('rm', b);
  });

  it('keeps bridge networking with a published port, and cgroup limits, working', async () => {
    const port = 21000 + (process.pid % 2000);
    const id = await t.ok('run', '-d', '--userns', 'auto', '--memory', '64m', '--pids-limit', '50', '-p', `127.0.0.1:${port}:80`, 'busybox',
      'sh', '-c', 'echo inside-userns > /i.html && exec httpd -f -p 80 -h /');
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      const res = await execa('busybox', ['wget', '-q', '-O', '-', `http://127.0.0.1:${port}/i.html`], { reject: false, timeout: 5000 });
      if (res.exitCode === 0) body = res.stdout.trim();
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe('inside-userns');
    expect(await t.ok('exec', id, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max')).toBe('67108864\n50');
    expect(await t.ok('exec', id, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start')).toBe('0');
    await t.ok('rm', '-f', id);
  });
});

describe('the writable layer as data', () => {
  it('commit and diff see owners as the container does, not the host\'s shifted ids', async () => {
    const id = await t.ok('run', '-d', '--userns', 'auto', 'busybox', 'sh', '-c', 'mkdir /made && touch /made/f && chown 1000:1000 /made/f && exec sleep 300');
    await expect.poll(async () => (await t.cli('exec', id, 'test', '-e', '/made/f')).exitCode).toBe(0);
    expect((await t.ok('diff', id)).split('\n').sort()).toEqual(['A /made', 'A /made/f']);
    // export and cp out write the container's owners too
    const listing = (await execa('tar', ['-tvf', '-', '--numeric-owner'], { input: (await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'export', id], { encoding: 'buffer' })).stdout })).stdout;
    expect(listing).toMatch(/^-\S+ 1000\/1000 .* made\/f$/m);
    expect(listing).toMatch(/^-\S+ 0\/0 .* etc\/passwd$/m);
    const out = path.join(tmp, 'cp-out');
    await fsp.mkdir(out);
    await t.ok('cp', '-a', `${id}:/made`, out);
    expect(statSync(path.join(out, 'made', 'f'))).toMatchObject({ uid: 1000, gid: 1000 });
    // cp in, as Docker under userns-remap: the container's root owns what lands, or with -a the archive's
    // owners do, shifted through the maps (on the host: the range's ids).
    const hostStart = Number((await inspect(t, id)).HostConfig.IDMappings.UidMap[0].split(':')[1]);
    await t.ok('cp', path.join(out, 'made'), `${id}:/tmp`);
    await t.ok('cp', '-a', path.join(out, 'made'), `${id}:/tmp/kept`);
    expect(await t.ok('exec', id, 'stat', '-c', '%u:%g', '/tmp/made', '/tmp/made/f', '/tmp/kept/f')).toBe('0:0\n0:0\n1000:1000');
    expect(statSync(path.join(upperOf(t, id), 'tmp/kept/f'))).toMatchObject({ uid: hostStart + 1000, gid: hostStart + 1000 });
    expect(statSync(path.join(upperOf(t, id), 'tmp/made/f'))).toMatchObject({ uid: hostStart, gid: hostStart });
    // a tar stream too, and back out with the container's owners
    const tarIn = await execa('tar', ['-c', '-f', '-', '--numeric-owner', '-C', out, 'made'], { encoding: 'buffer' });
    await t.ok('exec', id, 'mkdir', '/tmp/s');
    await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'cp', '-a', '-', `${id}:/tmp/s`], { input: tarIn.stdout });
    expect(await t.ok('exec', id, 'stat', '-c', '%u:%g', '/tmp/s/made/f')).toBe('1000:1000');
    expect((await fsp.readdir(path.join(t.root, 'containers', id))).filter((n) => n.startsWith('.cp-in'))).toEqual([]);
    await t.ok('commit', id, 'userns-commit:1');
    await t.ok('rm', '-f', id);
    expect(await t.ok('run', '--rm', 'userns-commit:1', 'stat', '-c', '%u:%g', '/made', '/made/f')).toBe('0:0\n1000:1000');
    await t.ok('rmi', 'userns-commit:1');
  });
});

describe('cp into a container with --uidmap', () => {
  it('gives the files to the mapped root, keeps mapped owners with -a, and refuses owners the maps leave out', async () => {
    const id = await t.ok('create', '--uidmap', '0:1700000000:2000', 'busybox', 'true');
    const src = path.join(tmp, 'cp-uidmap');
    await fsp.mkdir(path.join(src, 'd'), { recursive: true });
    await fsp.writeFile(path.join(src, 'd', 'in'), 'x');
    await fsp.writeFile(path.join(src, 'd', 'out'), 'x');
    await fsp.chown(path.join(src, 'd', 'in'), 1500, 1500);
    await fsp.chown(path.join(src, 'd', 'out'), 5000, 5000);
    await t.ok('cp', path.join(src, 'd'), `${id}:/plain`);
    expect(statSync(path.join(upperOf(t, id), 'plain/out'))).toMatchObject({ uid: 1700000000, gid: 1700000000 });
    const refused = await t.cli('cp', '-a', path.join(src, 'd'), `${id}:/kept`);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('kept/out of the copy is owned by 5000:5000, which the container\'s user namespace does not map');
    expect(existsSync(path.join(upperOf(t, id), 'kept'))).toBe(false);
    await fsp.chown(path.join(src, 'd', 'out'), 0, 0);
    await t.ok('cp', '-a', path.join(src, 'd'), `${id}:/kept`);
    expect(statSync(path.join(upperOf(t, id), 'kept/in'))).toMatchObject({ uid: 1700001500, gid: 1700001500 });
    expect(statSync(path.join(upperOf(t, id), 'kept/out'))).toMatchObject({ uid: 1700000000, gid: 1700000000 });
    // and out again, as the container sees them
    const back = path.join(tmp, 'cp-uidmap-back');
    await fsp.mkdir(back);
    await t.ok('cp', '-a', `${id}:/kept`, back);
    expect(statSync(path.join(back, 'kept/in'))).toMatchObject({ uid: 1500, gid: 1500 });
    await t.ok('rm', id);
  });
});

describe('file capabilities', () => {
  it('survive the shifted copy, for the namespace\'s root (v3 rootid), and apply to an exec inside', async () => {
    // a static busybox with cap_net_raw+ep (setcap, libcap2-bin), copied into an image
    const dir = path.join(tmp, 'cap');
    await fsp.mkdir(dir);
    await fsp.copyFile('/bin/busybox', path.join(dir, 'busybox'));
    await execa('setcap', ['cap_net_raw+ep', path.join(dir, 'busybox')]);
    const mk = await t.ok('create', 'busybox', 'true');
    await t.ok('cp', dir, `${mk}:/cap`);
    await t.ok('commit', mk, 'userns-caps:1');
    await t.ok('rm', mk);
    const capEff = (out: string) => /^CapEff:\s+(\w+)$/m.exec(out)?.[1];
    const NET_RAW = '0000000000002000';
    expect(capEff(await t.ok('run', '--rm', '--user', '1000', 'userns-caps:1', '/cap/busybox', 'grep', 'CapEff', '/proc/self/status'))).toBe(NET_RAW);
    const id = await t.ok('run', '-d', '--uidmap', '0:1700000000:2000', '--user', '1000', 'userns-caps:1', '/cap/busybox', 'sh', '-c', 'grep CapEff /proc/self/status; exec sleep 300');
    await expect.poll(async () => capEff(await t.ok('logs', id))).toBe(NET_RAW);
    const shifted = (await execa('find', [path.join(t.root, 'layers/shifted'), '-path', '*/diff/cap/busybox'])).stdout.trim();
    const attr = (await execa('getfattr', ['-n', 'security.capability', '-e', 'hex', '--absolute-names', shifted])).stdout;
    // version 3, permitted cap_net_raw, rootid 1700000000 (0x6553f100, little-endian)
    expect(attr).toContain('security.capability=0x0100000300200000000000000000000000000000' + '00f15365');
    await t.ok('rm', '-f', id);
    expect(capEff(await t.ok('run', '--rm', '--userns', 'auto', '--user', '1000', 'userns-caps:1', '/cap/busybox', 'grep', 'CapEff', '/proc/self/status'))).toBe(NET_RAW);
    await t.ok('rmi', 'userns-caps:1');
  });
});

describe('other namespaces and devices in a user namespace', () => {
  it('runs on the host\'s network, IPC and UTS, on none, and with a device at its own path', async () => {
    for (const flags of [['--network', 'host'], ['--ipc', 'host', '--uts', 'host'], ['--network', 'none'], ['--device', '/dev/null']]) {
      const out = await t.ok('run', '--rm', '--userns', 'auto', ...flags, 'busybox', 'sh', '-c', 'echo x > /dev/null && cat /proc/self/uid_map');
      expect(out, flags.join(' ')).toMatch(/^0\s+1\d{9}\s+65536$/);
    }
  });
});

describe('bind mounts and volumes', () => {
  it('shows a bind mount\'s host owners (unmapped root as nobody) and cannot write a root-owned file through it', async () => {
    const dir = path.join(tmp, 'etc-like');
    await fsp.mkdir(dir, { mode: 0o755 });
    await fsp.writeFile(path.join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
    const res = await t.cli('run', '--rm', '--userns', 'auto', '-v', `${dir}:/host`, 'busybox', 'sh', '-c',
      'stat -c %u:%g /host/passwd; echo evil >> /host/passwd && echo WROTE; touch /host/new && echo MADE; rm -f /host/passwd && echo REMOVED; true');
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe('65534:65534');
    expect(res.stdout).not.toMatch(/WROTE|MADE|REMOVED/);
    expect(await fsp.readFile(path.join(dir, 'passwd'), 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
    expect(await fsp.readdir(dir)).toEqual(['passwd']);
  });

  it(':U gives the source to the container\'s user; a new named volume belongs to the mapped root', async () => {
    const dir = path.join(tmp, 'given');
    await fsp.mkdir(path.join(dir, 'sub'), { recursive: true, mode: 0o755 });
    await fsp.writeFile(path.join(dir, 'sub', 'f'), 'x');
    const out = await t.ok('run', '--rm', '--uidmap', '0:1500000000:65536', '-u', '1000:1000', '-v', `${dir}:/d:U`, '-v', 'uvol:/vol', 'busybox', 'sh', '-c',
      'echo more >> /d/sub/f && stat -c %u:%g /d/sub/f /vol');
    expect(out).toBe('1000:1000\n0:0');
    expect(statSync(path.join(dir, 'sub', 'f'))).toMatchObject({ uid: 1500001000, gid: 1500001000 });
    expect(statSync(dir)).toMatchObject({ uid: 1500001000, gid: 1500001000 });
    const vol = JSON.parse(await t.ok('volume', 'inspect', 'uvol'))[0].Mountpoint as string;
    expect(statSync(vol)).toMatchObject({ uid: 1500000000, gid: 1500000000 });
    await t.ok('volume', 'rm', 'uvol');
  });
});

describe('shifted layers', () => {
  it('are made once per mapping, shared by its containers, and removed with the last of them', async () => {
    const shifted = path.join(t.root, 'layers', 'shifted');
    const a = await t.ok('create', '--uidmap', '0:1600000000:65536', 'busybox', 'true');
    const b = await t.ok('create', '--uidmap', '0:1600000000:65536', 'busybox', 'true');
    const keys = await fsp.readdir(shifted);
    expect(keys).toHaveLength(1);
    expect((await fsp.readdir(path.join(shifted, keys[0]!, 'refs'))).sort()).toEqual([a, b].sort());
    const layerDirs = (await fsp.readdir(path.join(shifted, keys[0]!))).filter((n) => /^[0-9a-f]{64}$/.test(n));
    expect(layerDirs.length).toBeGreaterThan(0);
    expect(statSync(path.join(shifted, keys[0]!, layerDirs[0]!, 'diff', 'bin')).uid).toBe(1600000000);
    // the store's own layer keeps its owners
    expect(statSync(path.join(t.root, 'layers', layerDirs[0]!, 'diff', 'bin')).uid).toBe(0);
    expect(await t.ok('start', '-a', a)).toBe('');
    await t.ok('rm', a);
    expect(await fsp.readdir(shifted)).toEqual(keys);
    await t.ok('rm', b);
    expect(await fsp.readdir(shifted)).toEqual([]);
  });
});

describe('a create killed while it shifts the layers', () => {
  it('leaves nothing once the next command has repaired the store', async () => {
    const { BERTH_FAILPOINT: _unset, ...env } = process.env;
    const res = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'create', '--userns', 'auto', 'busybox', 'true'], {
      reject: false, timeout: 60_000, env: { ...env, BERTH_FAILPOINT: 'storage.shift.before-rename' }, extendEnv: false,
    });
    expect(res.signal).toBe('SIGKILL');
    expect(await registryEntries(t.root)).toHaveLength(1);
    expect(await t.ok('ps', '-aq')).toBe('');
    expect(await fsp.readdir(path.join(t.root, 'layers', 'shifted')).catch(() => [])).toEqual([]);
    expect(await registryEntries(t.root)).toEqual([]);
  });
});

describe('refusals', () => {
  async function expectNothingLeft(e: TestEngine): Promise<void> {
    expect(await e.ok('ps', '-aq')).toBe('');
    expect(await fsp.readdir(path.join(e.root, 'snapshots')).then((l) => l.filter((n) => !n.startsWith('.')))).toEqual([]);
    expect(await fsp.readdir(path.join(e.root, 'layers', 'shifted')).catch(() => [])).toEqual([]);
    expect(await registryEntries(e.root)).toEqual([]);
  }

  it.each([
    [['--uidmap', '0:1'], /invalid --uidmap: "0:1" is not CONTAINER:HOST:SIZE/],
    [['--uidmap', '0:1700000000:0'], /maps no ids: the size must be at least 1/],
    [['--uidmap', '0:1700000000:100', '--uidmap', '50:1800000000:100'], /overlap on the container side/],
    [['--userns', 'auto:size=0'], /size "0" is not a whole number/],
    [['--userns', 'keep-id'], /keep-id .* only to rootless Berth/],
    [['--userns', 'auto', '--privileged'], /privileged mode is incompatible with user namespaces/],
    [['--userns', 'auto', '--pid', 'host'], /--pid host cannot be used with a user namespace/],
    [['--userns', 'auto', '-v', '/tmp:/t:idmap'], /idmap needs idmapped mounts/],
  ])('refuses %j with exit 125, leaving nothing behind', async (flags, message) => {
    const res = await t.cli('run', '--rm', ...flags, 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(message);
    await expectNothingLeft(t);
  });

  it('says which line to add when /etc/subuid has no berth entry', async () => {
    const empty = path.join(tmp, 'subuid-empty');
    await fsp.writeFile(empty, 'someone:100000:65536\n');
    const res = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'run', '--rm', '--userns', 'auto', 'busybox', 'true'], {
      reject: false, timeout: 60_000, env: { BERTH_SUBUID_FILE: empty, BERTH_SUBGID_FILE: empty },
    });
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toContain(`${empty} has no range for user "berth"`);
    expect(res.stderr).toContain(`add the line "${LINE}" to /etc/subuid and to /etc/subgid`);
    await expectNothingLeft(t);
  });

  it('--privileged runs as before with --userns host', async () => {
    expect(await t.ok('run', '--rm', '--userns', 'host', '--privileged', 'busybox', 'cat', '/proc/self/uid_map')).toMatch(/^0\s+0\s+4294967295$/);
  });
});

describe('userns-remap "default"', () => {
  it('gives every container without --userns a range of its own', async () => {
    const config = path.join(tmp, 'berth.json');
    await fsp.writeFile(config, JSON.stringify({ 'userns-remap': 'default' }));
    expect(await t.ok('--config', config, 'run', '--rm', 'busybox', 'cat', '/proc/self/uid_map')).toMatch(/^0\s+1\d{9}\s+65536$/);
    expect(await t.ok('--config', config, 'run', '--rm', '--userns', 'host', 'busybox', 'cat', '/proc/self/uid_map')).toMatch(/^0\s+0\s+4294967295$/);
    expect(await t.ok('run', '--rm', 'busybox', 'cat', '/proc/self/uid_map')).toMatch(/^0\s+0\s+4294967295$/);
  });

  it('builds RUN and COPY steps in the remapped namespace, and the image is the same as without', async () => {
    const config = path.join(tmp, 'berth-build.json');
    await fsp.writeFile(config, JSON.stringify({ 'userns-remap': 'default' }));
    const ctx = path.join(tmp, 'build-ctx');
    await fsp.mkdir(ctx);
    await fsp.writeFile(path.join(ctx, 'x'), 'x\n');
    await fsp.writeFile(path.join(ctx, 'Dockerfile'), [
      'FROM busybox',
      'RUN mkdir /d && touch /d/f /d/g && chown 1234:4321 /d/f && chmod 4755 /d/g',
      'COPY --chown=7:8 x /deep/er/x',
      'COPY x /y',
      'RUN cat /proc/self/uid_map > /map && chown 5:6 /y',
    ].join('\n'));
    await t.ok('--config', config, 'build', '--network', 'none', '-t', 'remapped:1', ctx);
    await t.ok('build', '--network', 'none', '--no-cache', '-t', 'plain:1', ctx);
    const ls = (img: string) => t.ok('run', '--rm', '--userns', 'host', img, 'ls', '-lnd', '/d', '/d/f', '/d/g', '/deep', '/deep/er', '/deep/er/x', '/y');
    const listing = await ls('remapped:1');
    expect(listing).toMatch(/^-rw-r--r-- +1 1234 +4321 .* \/d\/f$/m);
    expect(listing).toMatch(/^-rwsr-xr-x +1 0 +0 .* \/d\/g$/m);
    expect(listing).toMatch(/^-rw-r--r-- +1 7 +8 .* \/deep\/er\/x$/m);
    expect(listing).toMatch(/^-rw-r--r-- +1 5 +6 .* \/y$/m);
    expect(listing.replace(/\w{3} +\d+ +[\d:]+/g, '')).toBe((await ls('plain:1')).replace(/\w{3} +\d+ +[\d:]+/g, ''));
    // the RUN ran in a range of its own, the other in the host's
    expect(await t.ok('run', '--rm', '--userns', 'host', 'remapped:1', 'cat', '/map')).toMatch(/^0\s+1\d{9}\s+65536$/);
    expect(await t.ok('run', '--rm', '--userns', 'host', 'plain:1', 'cat', '/map')).toMatch(/^0\s+0\s+4294967295$/);
    await t.ok('rmi', 'remapped:1', 'plain:1');
  });

  it('is what info says, as Docker\'s name=userns security option', async () => {
    const config = path.join(tmp, 'berth-info.json');
    await fsp.writeFile(config, JSON.stringify({ 'userns-remap': 'default' }));
    expect(await t.ok('--config', config, 'info')).toContain(' Container User Namespace: auto (userns-remap)\n');
    expect(await t.ok('--config', config, 'info', '--format', '{{json .SecurityOptions}}')).toContain('name=userns');
    expect(await t.ok('info')).toContain(' Container User Namespace: host (no userns-remap)\n');
    expect(await t.ok('info', '--format', '{{json .SecurityOptions}}')).not.toContain('name=userns');
  });
});
