import { spawn } from 'node:child_process';
import { tarOwnerMaps } from './userns.js';
import { promises as fsp } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type { Change } from '../storage/index.js';
import { observed, type ContainerContext } from './context.js';
import { freeze } from './freeze.js';
import { openRootfs } from './copy.js';
import { resolveNoticed } from './lost.js';
import type { ContainerRecord } from './record.js';

/**
 * The container's filesystem as data: `diff`, `export` and `commit`. The writable layer is the snapshot's
 * upper dir; Docker keeps its mount points (hosts, resolv.conf, /dev, volumes) in an init layer below the
 * container's, so here they are left out by path.
 */

/** Paths runc creates in the rootfs to mount on, and the container's volumes and binds. */
export function mountPoints(rec: ContainerRecord): string[] {
  return ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/dev', '/proc', '/sys', ...(rec.config.mounts ?? []).map((m) => m.destination)];
}

export interface CommitOptions {
  reference?: string;
  changes?: string[];
  message?: string;
  author?: string;
  /** Docker's default: freeze a running container while its layer is read */
  pause?: boolean;
}

export async function containerChanges(ctx: ContainerContext, ref: string): Promise<Change[]> {
  const rec = await resolveNoticed(ctx, ref);
  return ctx.deps.snapshots.changes(rec.id, mountPoints(rec));
}

/**
 * The root filesystem as GNU tar writes it (hard links kept, numeric owners, xattrs), without what is
 * mounted on it: runc mounts volumes in the container's own mount namespace, so the host sees the bare
 * snapshot. A stopped container's snapshot is mounted for the read and unmounted after.
 */
export async function exportContainer(ctx: ContainerContext, ref: string): Promise<Readable> {
  const rec = await resolveNoticed(ctx, ref);
  const view = await openRootfs(ctx, rec, { pause: false });
  const names = (await fsp.readdir(view.root)).sort();
  const maps = await tarOwnerMaps(rec.config.userns?.idmap).catch(async (err: unknown) => { await view.release(); throw err; });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const child = spawn('tar', ['-c', '-f', '-', '--numeric-owner', ...maps.args, '--xattrs', '--xattrs-include=*', '--sparse', '-C', view.root, '--', ...names], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    Promise.all([view.release(), maps.cleanup()]).then(() => {
      if (code === 0) out.end();
      else out.destroy(new RuntimeError(`exporting container ${rec.name} failed: tar exited with ${code}: ${stderr.trim()}`, 'see the message above'));
    }, (err: Error) => out.destroy(err));
  });
  out.on('close', () => { if (child.exitCode === null) child.kill('SIGTERM'); });
  return out;
}

/**
 * `docker commit`: the writable layer becomes a layer on top of the container's image, with the
 * container's config (its command, env, workdir...) under `changes`. The history entry's created_by is
 * the container's command, its comment the message, as Docker writes them.
 */
export async function commitContainer(ctx: ContainerContext, ref: string, opts: CommitOptions): Promise<string> {
  const rec = await resolveNoticed(ctx, ref);
  const c = rec.config;
  const now = await observed(ctx, rec);
  const pause = opts.pause !== false && now.state === 'running';
  const imgEnv = new Set((c.imageConfig.Env ?? []).map((e) => e.split('=')[0]));
  const env = (c.spec.spec.process?.env ?? c.imageConfig.Env ?? []).filter((e) => {
    const k = e.split('=')[0]!;
    // HOSTNAME and TERM are the runtime's, not the container's config (Docker leaves them out too).
    return imgEnv.has(k) || (k !== 'HOSTNAME' && k !== 'TERM') || (c.request.env ?? []).some((x) => x.split('=')[0] === k);
  });
  const cmd = c.request.command?.length ? c.request.command : c.imageConfig.Cmd ?? null;
  const entrypoint = c.request.entrypoint ?? c.imageConfig.Entrypoint ?? null;
  const containerConfig = {
    ...(c.imageConfig as Record<string, unknown>),
    Env: env,
    Cmd: cmd,
    Entrypoint: entrypoint && entrypoint.length && !(entrypoint.length === 1 && entrypoint[0] === '') ? entrypoint : null,
    ...(c.spec.user ? { User: c.spec.user } : {}),
    ...(c.spec.spec.process?.cwd ? { WorkingDir: c.spec.spec.process.cwd } : {}),
    Labels: { ...(c.imageConfig.Labels ?? {}), ...c.labels },
    ...(c.exposedPorts?.length ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) } : {}),
  };
  const thaw = pause ? await freeze(ctx, rec.id) : undefined;
  try {
    const layer = await ctx.deps.snapshots.packChanges(rec.id, mountPoints(rec));
    return await ctx.deps.images.commit({
      parent: c.imageId, layer, containerConfig, changes: opts.changes, message: opts.message, author: opts.author,
      createdBy: [c.path, ...c.args].join(' '), reference: opts.reference,
    });
  } finally {
    await thaw?.();
  }
}
