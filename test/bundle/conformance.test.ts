import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, writeBundle, type BundleInput } from '../../src/bundle/index.js';
import type { CreateRequest } from '../../src/options.js';
import { run } from '../../src/util/exec.js';
import { GOLDEN, inputFor } from './fixtures.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const VALIDATOR = path.resolve(repoRoot, '../shared/tools/validate-oci-config.mjs');

const devices = {
  '/dev/fuse': { type: 'c' as const, major: 10, minor: 229, uid: 0, gid: 0, fileMode: 0o666 },
  '/dev/sda': { type: 'b' as const, major: 8, minor: 0, uid: 0, gid: 6, fileMode: 0o660 },
};

/** Every option buildSpec reads, at least once. */
const MATRIX: Record<string, [Partial<CreateRequest>, Partial<BundleInput>?]> = {
  ...Object.fromEntries(Object.entries(GOLDEN).map(([k, r]) => [k, [r]])),
  'user-and-workdir': [{ user: 'app', workdir: '/srv', env: ['A=1', 'B'], tty: true, openStdin: true }, { envFileText: ['C=3\n'] }],
  'user-numeric-group': [{ user: '1000:29' }],
  entrypoint: [{ entrypoint: ['/bin/echo'], command: ['hello'] }],
  'entrypoint-cleared': [{ entrypoint: [''], command: ['ls', '-l'] }],
  init: [{ init: true, stopSignal: 'SIGQUIT', labels: { a: 'b' } }, { initPath: '/usr/bin/catatonit' }],
  identity: [{ hostname: 'web', domainname: 'example.com' }],
  'host-namespaces': [{ pid: 'host', ipc: 'host', uts: 'host' }, { namespaces: { network: 'host', pid: 'host', ipc: 'host', uts: 'host' } }],
  'joined-namespaces': [
    { network: { networks: ['container:db'] } },
    { namespaces: { network: { path: '/proc/42/ns/net' }, pid: { path: '/proc/42/ns/pid' }, ipc: { path: '/proc/42/ns/ipc' } } },
  ],
  'fresh-netns': [{}, { namespaces: {} }],
  caps: [{ capAdd: ['sys_admin', 'CAP_SYS_PTRACE'], capDrop: ['NET_RAW', 'mknod'] }],
  'cap-add-all': [{ capAdd: ['ALL'], capDrop: ['SYS_MODULE'] }],
  security: [{ securityOpt: ['no-new-privileges', 'apparmor=unconfined', 'label=disable'] }],
  'seccomp-unconfined': [{ securityOpt: ['seccomp=unconfined'] }],
  'seccomp-file': [
    { securityOpt: ['seccomp=/etc/p.json'] },
    { seccompProfileText: JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }) },
  ],
  filesystems: [{ readOnly: true, tmpfs: ['/run', '/cache:exec,size=64m,mode=1777'], shmSize: '128m' }, {
    extraMounts: [{ destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'ro', 'rprivate'] }],
  }],
  ulimits: [{ ulimits: ['nofile=1024:2048', 'nproc=512', 'core=0'] }],
  devices: [{ devices: ['/dev/fuse', '/dev/sda:/dev/xvda:r'] }, { devices }],
  sysctls: [{ sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '68719476736', 'fs.mqueue.msg_max': '20' } }],
  'resources-all': [{
    resources: {
      memory: '1g', memorySwap: -1, memoryReservation: '512m', oomKillDisable: true, cpuShares: 512, cpuPeriod: 50000,
      cpuQuota: 25000, cpusetCpus: '0-1', cpusetMems: '0', pidsLimit: -1, blkioWeight: 500,
      deviceReadBps: ['/dev/sda:1mb'], deviceWriteBps: ['/dev/sda:10mb'],
    },
  }, { devices }],
  'resources-swap': [{ resources: { memory: '64m', memorySwap: '256m', cpus: 2 } }],
  'cgroup-v2': [{}, { host: { ...inputFor({}).host, cgroupMode: 'v2' } }],
  arm64: [{}, { arch: 'arm64' }],
  'no-user-db': [{ user: '4242' }, { userDb: { passwd: '', group: '' } }],
};

describe('generated configs conform to the upstream runtime-spec schema and runc\'s rules', () => {
  let tmp = '';
  let exitCode: number | undefined;
  const results = new Map<string, { ok: boolean; errors: unknown[] }>();

  beforeAll(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-conformance-'));
    const dirs: string[] = [];
    for (const [name, [request, over]] of Object.entries(MATRIX)) {
      const dir = path.join(tmp, name);
      // writeBundle validates against Berth's own schema first.
      await writeBundle(dir, buildSpec(inputFor(request, over)).spec);
      dirs.push(dir);
    }
    if (!existsSync(VALIDATOR)) return;
    const { exitCode: code, stdout } = await validate(dirs);
    exitCode = code;
    for (const r of JSON.parse(stdout).results as { path: string; ok: boolean; errors: unknown[] }[]) {
      results.set(path.basename(path.dirname(r.path)), r);
    }
  });

  afterAll(async () => {
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
  });

  it('the validator exits 0 for the whole matrix', (ctx) => {
    if (!existsSync(VALIDATOR)) ctx.skip(`${VALIDATOR} is absent`);
    expect(exitCode).toBe(0);
  });

  it('the validator does catch a broken config (the harness can fail)', async (ctx) => {
    if (!existsSync(VALIDATOR)) ctx.skip(`${VALIDATOR} is absent`);
    const dir = path.join(tmp, 'broken');
    await fsp.mkdir(dir);
    const spec = buildSpec(inputFor({})).spec;
    spec.mounts![0]!.destination = 'proc';
    await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(spec));
    expect((await validate([dir])).exitCode).toBe(1);
  });

  for (const name of Object.keys(MATRIX)) {
    it(`${name}: valid for Berth's schema and ${path.basename(VALIDATOR)}`, (ctx) => {
      if (!existsSync(VALIDATOR)) ctx.skip(`${VALIDATOR} is absent: only Berth's own schema was checked`);
      expect(results.get(name)).toEqual({ path: path.join(tmp, name, 'config.json'), ok: true, errors: [] });
    });
  }
});

async function validate(dirs: string[]): Promise<{ exitCode: number; stdout: string }> {
  try {
    return { exitCode: 0, stdout: (await run(process.execPath, [VALIDATOR, '--json', ...dirs], { timeout: 60_000 })).stdout };
  } catch (err) {
    const e = err as { commandExitCode?: number; cause?: { stdout?: string } };
    return { exitCode: e.commandExitCode ?? -1, stdout: String(e.cause?.stdout ?? '') };
  }
}
