import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BadStateError, RuntimeError } from '../errors.js';
import { STORE_MODES } from '../paths.js';
import type { ClientTerminal } from '../types.js';
import { writeFileAtomic } from '../util/fs.js';
import { processTag, tagAlive } from '../util/liveness.js';
import { withLock } from '../util/lock.js';
import { mustLoad, setState, tearDownRun, type ContainerContext } from './context.js';
import { finishExitIfEnded } from './exit.js';
import { startHealth } from './health.js';
import { failpoint } from '../util/failpoint.js';
import type { SandboxStatus } from './ports.js';
import { containerPaths, ZERO_TIME, type ContainerRecord } from './record.js';
import { setConsoleSize, useVolumeSources } from './spec.js';
import { addKeepIdUser, chownMountSources, hostIds } from './userns.js';

/** start: under the container's lock; a running or paused container is refused, as Docker does. */
export async function startContainer(ctx: ContainerContext, ref: string, terminal?: ClientTerminal): Promise<void> {
  const rec0 = await ctx.records.resolve(ref);
  await withLock(containerPaths(ctx.layout, rec0.id).lock, async () => {
    const rec = await mustLoad(ctx, rec0.id);
    await finishExitIfEnded(ctx, rec);
    if (rec.state === 'running' || rec.state === 'paused') {
      throw new BadStateError(`container ${rec.name} is already running`, 'stop it first, or use "berth restart"');
    }
    rec.manuallyStopped = false;
    delete rec.keepOnExit;
    await startLocked(ctx, rec, terminal);
  });
}

/**
 * The caller holds the lock. `starting` is recorded before anything is made, so a killed start is found
 * by repair; on failure everything made is undone and the container goes back to where it was (Created,
 * or Exited with the error), as Docker keeps a container whose start failed.
 */
export async function startLocked(ctx: ContainerContext, rec: ContainerRecord, terminal?: ClientTerminal): Promise<void> {
  const p = containerPaths(ctx.layout, rec.id);
  const back = rec.state === 'created' ? 'created' as const : 'exited' as const;
  rec.error = '';
  delete rec.restarter;
  await setState(ctx, rec, 'starting');
  try {
    const rootfs = await ctx.deps.snapshots.mount(rec.id);
    if (rec.config.userns?.keepId) await addKeepIdUser(rootfs, rec.config.userns.keepId);
    await ctx.deps.runtime.monitor.clearExit(rec.id);
    // A container left by a crashed start would make runc create fail with "already exists".
    await ctx.deps.runtime.runc.delete(rec.id, { force: true }).catch(() => {});
    const sandbox = await attachNetwork(ctx, rec);
    await Promise.all([
      writeFileAtomic(p.hostname, sandbox.hostname + '\n', STORE_MODES.mounted),
      writeFileAtomic(p.hosts, sandbox.hostsFile, STORE_MODES.mounted),
      writeFileAtomic(p.resolvConf, sandbox.resolvConf, STORE_MODES.mounted),
    ]);
    const volumeSources = await ctx.deps.volumes.mount(rec.id, rec.config.mounts ?? [], rootfs);
    const spec = await ctx.specs.finish(rec, rootfs, sandbox);
    useVolumeSources(spec, volumeSources);
    const user = spec.process!.user;
    await chownMountSources(rec.config.mounts ?? [], hostIds(rec.config.userns?.idmap, user.uid, user.gid));
    await ctx.deps.bundle.checkRootfs(rootfs, (spec.mounts ?? []).map((m) => m.destination));
    setConsoleSize(spec, terminal);
    await ctx.deps.bundle.writeBundle(p.bundle, spec);
    const { pid } = await ctx.deps.runtime.monitor.create({
      id: rec.id, bundle: p.bundle, logPath: p.log, tty: rec.config.tty, openStdin: rec.config.openStdin,
      exitCommand: ctx.deps.cleanupCommand(rec.id, p.attached),
      ...(rec.config.runtime ? { runtime: rec.config.runtime.path } : {}),
      // One file (Docker's default max-file): conmon's own rotation, exact to the record, starts it afresh.
      ...(rec.config.logSizeMax && (rec.config.logMaxFiles ?? 1) === 1 ? { logSizeMax: rec.config.logSizeMax } : {}),
    });
    // conmon has written its pid file before it reports the container's pid (-P, before the sync).
    const monitorPid = await ctx.deps.runtime.monitor.pid(rec.id);
    if (monitorPid) rec.monitor = processTag(monitorPid, { boot: true });
    else delete rec.monitor;
    await startLogRotation(ctx, rec, monitorPid, p.bundle, p.log);
    await ctx.deps.runtime.runc.start(rec.id);
    rec.pid = pid;
    rec.startedAt = new Date().toISOString();
    rec.ports = sandbox.ports;
    rec.networks = sandbox.endpoints;
    await startHealth(ctx, rec);
    failpoint('container.start.after-health-timer');
    await setState(ctx, rec, 'running');
  } catch (err) {
    await tearDownRun(ctx, rec.id).catch(() => {});
    rec.error = (err as Error).message;
    if (back === 'exited' || rec.startedAt !== ZERO_TIME) rec.exitCode = (err as { exitCode?: number }).exitCode ?? 125;
    await setState(ctx, rec, back);
    throw err;
  }
}

async function attachNetwork(ctx: ContainerContext, rec: ContainerRecord): Promise<SandboxStatus> {
  const plan = rec.config.network;
  let sharedWithPid: number | undefined;
  if (plan.mode.kind === 'container') {
    const other = await ctx.records.load(plan.mode.id);
    if (!other) throw new BadStateError(`cannot join the network of container ${plan.mode.id.slice(0, 12)}: it was removed`, 'create this container again');
    if (other.state !== 'running') throw new BadStateError(`cannot join the network of container ${other.name}: it is not running`, `start ${other.name} first`);
    // network layer: a --network none container's netns is runc's, named through its process.
    sharedWithPid = other.pid || undefined;
  }
  for (const link of plan.links) {
    const other = await ctx.records.load(link.id);
    if (!other || other.state !== 'running') throw new BadStateError(`cannot link to container ${link.name}: it is not running`, `start ${link.name} first`);
  }
  return ctx.deps.network.attach({
    id: rec.id, name: rec.name, hostname: rec.config.hostname, ...(rec.config.domainname ? { domainname: rec.config.domainname } : {}),
    plan, ...(sharedWithPid ? { sharedWithPid } : {}), ...(rec.config.userns?.idmap ? { userns: rec.config.userns.idmap } : {}),
  });
}

/** Removes the marker of an attached run (see run in manager.ts). */
export async function clearAttached(ctx: ContainerContext, id: string): Promise<void> {
  await fsp.rm(containerPaths(ctx.layout, id).attached, { force: true });
}

/**
 * Makes this process the one that does the container's exit work while it ends the container (stop, rm -f,
 * kill): the monitor's exit hook then stands down (CLEANUP_GUARD) instead of starting a second node process
 * that would only repeat the work, about 150 ms of CPU per container. An attached run that lives keeps the
 * work. If this process dies first, the next command finishes it (repair.ts: an exit nobody recorded).
 * Returns the release, which leaves a claim made meanwhile by another process alone.
 */
export async function claimExitWork(ctx: ContainerContext, id: string): Promise<() => Promise<void>> {
  const file = containerPaths(ctx.layout, id).attached;
  const mine = processTag(process.pid);
  const held = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
  if (held && held !== mine && tagAlive(held)) return async () => {};
  await writeFileAtomic(file, `${mine}\n`);
  return async () => {
    if ((await fsp.readFile(file, 'utf8').catch(() => '')).trim() === mine) await fsp.rm(file, { force: true });
  };
}

/** --log-opt max-file > 1: the rotator follows the monitor just made (before the process starts writing). */
async function startLogRotation(ctx: ContainerContext, rec: ContainerRecord, monitorPid: number | undefined, bundle: string, logPath: string): Promise<void> {
  if (!rec.config.logSizeMax || (rec.config.logMaxFiles ?? 1) === 1) return;
  if (!monitorPid) throw new RuntimeError(`the monitor of container ${rec.name} is gone before its process started`, 'see "berth logs" and try again');
  await ctx.deps.runtime.logRotator.start(rec.id, {
    monitorPid, logPath, maxSize: rec.config.logSizeMax, maxFiles: rec.config.logMaxFiles ?? 1, ctl: path.join(bundle, 'ctl'),
  });
}

