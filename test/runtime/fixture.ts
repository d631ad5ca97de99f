/**
 * A throwaway store and busybox bundles for the runtime tests. The spec is written here rather than by
 * the bundle layer so these tests depend on runc and conmon only.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { probeHost, type HostFacts } from '../../src/host.js';
import { resolveLayout, type StoreLayout } from '../../src/paths.js';
import { createRuntime, type Runtime } from '../../src/runtime/index.js';

const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'true', 'false', 'ls', 'head'];

export interface Fixture {
  dir: string;
  layout: StoreLayout;
  host: HostFacts;
  rt: Runtime;
  ids: string[];
  /** A bundle for `args`; returns its id, bundle dir and log path. */
  bundle(args: string[], opts?: { tty?: boolean }): Promise<{ id: string; bundle: string; logPath: string; cgroupsPath: string }>;
  cleanup(): Promise<void>;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-rt-'));
  // A short runroot keeps socket paths well under 108 bytes.
  const layout = resolveLayout({ root: path.join(dir, 'root'), runroot: path.join(dir, 'run') });
  const host = await probeHost();
  const rt = createRuntime(layout, host);
  const ids: string[] = [];
  return {
    dir, layout, host, rt, ids,
    async bundle(args, opts = {}) {
      const id = `brt${randomBytes(6).toString('hex')}`;
      ids.push(id);
      const bundle = path.join(layout.containers, id, 'bundle');
      await makeRootfs(path.join(bundle, 'rootfs'));
      const cgroupsPath = `/berthtest/${id}`;
      await fsp.writeFile(path.join(bundle, 'config.json'), JSON.stringify(minimalSpec(args, cgroupsPath, !!opts.tty)));
      return { id, bundle, logPath: path.join(layout.containers, id, 'ctr.log'), cgroupsPath };
    },
    async cleanup() {
      for (const id of ids) {
        await rt.runc.delete(id, { force: true }).catch(() => {});
        // The monitor exits by itself once its container is gone; kill it only if it lingers.
        const pid = await rt.monitor.pid(id).catch(() => undefined);
        for (let i = 0; i < 60 && (await rt.monitor.alive(id)); i++) await new Promise((r) => setTimeout(r, 50));
        if (pid && (await rt.monitor.alive(id))) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
        await rt.cgroups.remove(`/berthtest/${id}`).catch(() => {});
      }
      await rt.cgroups.remove('/berthtest').catch(() => {});
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

async function makeRootfs(rootfs: string): Promise<void> {
  await fsp.mkdir(path.join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) await fsp.mkdir(path.join(rootfs, d), { recursive: true });
  await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  await fsp.chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) await fsp.symlink('busybox', path.join(rootfs, 'bin', a));
}

/** The smallest spec runc 1.1 accepts for these tests: own pid/mount/ipc/uts namespaces, host network. */
export function minimalSpec(args: string[], cgroupsPath: string, terminal: boolean): object {
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal, user: { uid: 0, gid: 0 }, args, cwd: '/',
      env: ['PATH=/bin', 'TERM=xterm'],
      capabilities: Object.fromEntries(['bounding', 'effective', 'permitted'].map((k) => [k, ['CAP_KILL', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETGID']])),
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: false },
    hostname: 'brt',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      cgroupsPath,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
    },
  };
}

/** Whether a pid is a live (not zombie) conmon. */
export async function isLiveConmon(pid: number): Promise<boolean> {
  try {
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.includes('(conmon)') && stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

/** Leftover check: runc containers of this root. */
export function runcIds(layout: StoreLayout): string[] {
  const out = execFileSync('runc', ['--root', layout.runc, 'list', '-q'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}
