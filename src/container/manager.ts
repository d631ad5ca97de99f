import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ContainerInspect, ContainerStats, ContainerSummary, ClientTerminal, ExecRequest, LogEntry, LogOptions, PortBinding, RunOptions, StartOptions, StdioStreams, TopResult,
} from '../types.js';
import { BadStateError, InvalidArgumentError, NotFoundError, isAlreadyGone, runTeardown } from '../errors.js';
import { newContainerId, shortId, type ContainerId } from '../ids.js';
import type { CreateRequest, NetworkRequest, ResourceRequest } from '../options.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import { readJson, readdirIfExists, removeStaleTemps, writeFileAtomic } from '../util/fs.js';
import { acquireLock, isStaleLock, processStartTime, withLock } from '../util/lock.js';
import { EventLog } from '../events.js';
import { inspectView, summaryView } from './views.js';
import { generateName } from './names.js';
import type { ContainerDeps, ImageConfig, NetworkPlan, SandboxStatus, Spec } from './ports.js';
import { RecordStore, ZERO_TIME, containerPaths, readImageConfig, writeImageConfig, type ContainerRecord } from './record.js';
import { SpecAssembler, setConsoleSize } from './spec.js';
import { Observer } from './observe.js';
import { matchesFilters, parseFilters } from './filters.js';
import { normalizeSignal, parseRestartPolicy, restartDelay, shouldRestart } from './status.js';
import { stripUndefined } from '../util/object.js';
import { failpoint } from '../util/failpoint.js';

const LIVE: ReadonlySet<string> = new Set(['running', 'paused', 'restarting', 'stopping']);
const DEFAULT_IMAGE = /^(localhost\/)?busybox(:latest)?$/;

/**
 * The container lifecycle: create → start → (exit → cleanup → restart?) → stop → remove.
 * One lock per container; never held while waiting on the container's process. Every step that makes
 * host objects first records its `phase`, so `repairInterrupted` can finish or undo a killed command.
 */
export class ContainerManager {
  readonly records: RecordStore;
  readonly events: EventLog;
  private readonly specs: SpecAssembler;
  private readonly observer: Observer;

  constructor(private readonly layout: StoreLayout, private readonly deps: ContainerDeps) {
    this.records = new RecordStore(layout);
    this.events = new EventLog(layout);
    this.specs = new SpecAssembler(layout, deps, this.records);
    this.observer = new Observer(deps);
  }

  // ------------------------------------------------------------------ create / start

  async create(req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
    if (!req.image) throw new InvalidArgumentError('image', 'no image given', 'name an image, e.g. "berth run busybox echo hi"');
    const restartPolicy = parseRestartPolicy(req.restart);
    if (req.autoRemove && restartPolicy.name !== 'no') {
      throw new InvalidArgumentError('--restart', 'conflicting options: cannot specify both --restart and --rm');
    }
    const stopSignal = normalizeSignal(req.stopSignal ?? 'SIGTERM', '--stop-signal');
    await this.repairInterrupted();
    const image = await this.resolveImage(req.image);
    const imageConfig = image.config.config ?? {};
    // Every network flag is checked before anything exists (the plan is made again at start).
    await this.planNetwork(req.network ?? {}, imageConfig, false);
    const id = newContainerId();
    const name = req.name ?? (await this.freeGeneratedName());
    const p = containerPaths(this.layout, id);
    const networkMode = req.network?.networks?.[0] ?? 'bridge';
    const rec: ContainerRecord = {
      id, name, created: new Date().toISOString(), image: req.image, imageId: image.id, request: req,
      path: '', args: [], tty: !!req.tty, openStdin: !!req.openStdin,
      state: 'configured', phase: 'creating', pid: 0, startedAt: ZERO_TIME, finishedAt: ZERO_TIME, exitCode: 0,
      oomKilled: false, error: '', restartPolicy, restartCount: 0, manuallyStopped: false, autoRemove: !!req.autoRemove,
      stopSignal: imageConfig.StopSignal && !req.stopSignal ? normalizeSignal(imageConfig.StopSignal) : stopSignal,
      stopTimeout: req.stopTimeout ?? 10, labels: { ...(imageConfig.Labels ?? {}), ...(req.labels ?? {}) },
      ports: [], networks: [], networkMode, hostname: req.hostname ?? id.slice(0, 12),
    };
    let warnings: string[] = [];
    try {
      await withLock(p.lock, async () => {
        await this.records.save(rec);
        await this.records.reserveName(name, id);
        await writeImageConfig(this.layout, id, imageConfig);
        const snap = await this.deps.snapshots.prepare(id, { image: image.id, layers: image.layers });
        failpoint('container.create.after-snapshot');
        // Build the spec now so that every bad flag fails at create, as with docker.
        const built = await this.specs.build(rec, snap.mountpoint, imageConfig, undefined);
        warnings = built.warnings;
        const args = built.spec.process?.args ?? [];
        // With --init the process is the init; Path/Args still name the user's command, as docker shows them.
        const command = req.init ? args.slice(args.indexOf('--') + 1) : args;
        rec.path = command[0] ?? '';
        rec.args = command.slice(1);
        rec.state = 'created';
        delete rec.phase;
        await this.records.save(rec);
      });
    } catch (err) {
      await this.destroy(rec).catch(() => {});
      throw err;
    }
    await this.events.emit('container', 'create', id, { name, image: req.image });
    return { id, warnings };
  }

  async start(ref: string, opts: StartOptions = {}): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    await withLock(containerPaths(this.layout, rec0.id).lock, async () => {
      const rec = await this.mustLoad(rec0.id);
      await this.syncExited(rec);
      if (rec.state === 'running' || rec.state === 'paused') {
        throw new BadStateError(`container ${rec.name} is already running`, 'stop it first, or use "berth restart"');
      }
      rec.manuallyStopped = false;
      delete rec.keepOnExit;
      await this.startLocked(rec, opts.terminal);
    });
  }

  private async startLocked(rec: ContainerRecord, terminal?: ClientTerminal): Promise<void> {
    const p = containerPaths(this.layout, rec.id);
    const imageConfig = await readImageConfig(this.layout, rec.id);
    rec.phase = 'starting';
    rec.error = '';
    await this.records.save(rec);
    let sandbox: SandboxStatus | undefined;
    try {
      const rootfs = await this.deps.snapshots.mount(rec.id);
      await this.deps.runtime.monitor.clearExit(rec.id);
      // A container left by a crashed start would make runc create fail with "already exists".
      await this.deps.runtime.runc.delete(rec.id, { force: true }).catch(() => {});
      sandbox = await this.attachNetwork(rec, imageConfig);
      await Promise.all([
        writeFileAtomic(p.hostname, sandbox.hostname + '\n', STORE_MODES.mounted),
        writeFileAtomic(p.hosts, sandbox.hostsFile, STORE_MODES.mounted),
        writeFileAtomic(p.resolvConf, sandbox.resolvConf, STORE_MODES.mounted),
      ]);
      const { spec } = await this.specs.build(rec, rootfs, imageConfig, sandbox);
      await this.deps.bundle.checkRootfs(rootfs, (spec.mounts ?? []).map((m) => m.destination));
      setConsoleSize(spec, terminal);
      await this.deps.bundle.writeBundle(p.bundle, spec);
      const { pid } = await this.deps.runtime.monitor.create({
        id: rec.id, bundle: p.bundle, logPath: p.log, tty: rec.tty, openStdin: rec.openStdin,
        exitCommand: this.deps.cleanupCommand(rec.id, p.attached),
      });
      await this.deps.runtime.runc.start(rec.id);
      rec.pid = pid;
      rec.state = 'running';
      rec.startedAt = new Date().toISOString();
      rec.ports = sandbox.ports;
      rec.networks = sandbox.endpoints;
      delete rec.phase;
      await this.records.save(rec);
    } catch (err) {
      await runTeardown([
        () => this.deps.runtime.runc.delete(rec.id, { force: true }),
        () => this.deps.network.detach(rec.id),
        () => this.deps.snapshots.unmount(rec.id),
      ]).catch(() => {});
      delete rec.phase;
      rec.error = (err as Error).message;
      rec.state = rec.state === 'restarting' ? 'exited' : rec.state;
      if (rec.state === 'exited' || rec.startedAt !== ZERO_TIME) rec.exitCode = (err as { exitCode?: number }).exitCode ?? 125;
      await this.records.save(rec);
      throw err;
    }
    await this.events.emit('container', 'start', rec.id, { name: rec.name, image: rec.image });
  }

  private async attachNetwork(rec: ContainerRecord, imageConfig: ImageConfig): Promise<SandboxStatus> {
    const { plan, sharedWithPid } = await this.planNetwork(rec.request.network ?? {}, imageConfig, true);
    return this.deps.network.attach({
      id: rec.id, name: rec.name, hostname: rec.hostname, domainname: rec.request.domainname, plan,
      ...(sharedWithPid ? { sharedWithPid } : {}),
    });
  }

  /** Resolves container:X and --link to ids (running ones at start), then has the network layer plan. */
  private async planNetwork(req: NetworkRequest, imageConfig: ImageConfig, atStart: boolean): Promise<{ plan: NetworkPlan; sharedWithPid?: number }> {
    const mode = req.networks?.[0] ?? 'bridge';
    let sharedWith: string | undefined;
    let sharedWithPid: number | undefined;
    if (mode.startsWith('container:')) {
      const other = await this.records.resolve(mode.slice('container:'.length));
      if (atStart && other.state !== 'running') throw new BadStateError(`cannot join the network of container ${other.name}: it is not running`, `start ${other.name} first`);
      // network layer: a --network none container's netns is runc's, named through its process.
      sharedWith = other.id;
      if (other.pid) sharedWithPid = other.pid;
    }
    const links = [];
    for (const link of req.links ?? []) {
      const [target, alias] = link.split(':');
      const other = await this.records.resolve(target!);
      if (atStart && other.state !== 'running') throw new BadStateError(`cannot link to container ${other.name}: it is not running`, `start ${other.name} first`);
      links.push({ id: other.id, name: other.name, alias: alias ?? other.name });
    }
    const plan = await this.deps.network.plan(req, { exposedPorts: Object.keys(imageConfig.ExposedPorts ?? {}), sharedWith, links });
    return { plan, sharedWithPid };
  }

  // ------------------------------------------------------------------ run / attach / wait

  async run(req: CreateRequest, opts: RunOptions = {}): Promise<{ id: string; exitCode?: number; warnings: string[] }> {
    const { id, warnings } = await this.create(req);
    opts.onCreated?.(id);
    if (!opts.detach) await writeFileAtomic(containerPaths(this.layout, id).attached, processTag(process.pid) + '\n');
    try {
      await this.start(id, { terminal: opts.detach ? undefined : opts.io?.terminal });
    } catch (err) {
      if (req.autoRemove) await this.remove(id, { force: true }).catch(() => {});
      throw err;
    }
    if (opts.detach) return { id, warnings };
    const rec = await this.mustLoad(id);
    // Ended when the exit is recorded, or when someone else already cleaned the container away.
    const exited = async () => (await this.deps.runtime.monitor.exitStatus(id)) !== undefined || !(await this.records.load(id));
    const attached = this.deps.runtime.monitor.attach(id, { ...(opts.io ?? {}), logPath: containerPaths(this.layout, id).log, tty: rec.tty }, exited);
    const exitCode = await this.deps.runtime.monitor.waitExit(id);
    await attached;
    // The exit work is ours: the monitor's cleanup stands down while this process lives (see attached.pid).
    await this.cleanup(id);
    await fsp.rm(containerPaths(this.layout, id).attached, { force: true });
    return { id, exitCode, warnings };
  }

  async attach(ref: string, io: StdioStreams): Promise<{ exitCode?: number }> {
    const rec = await this.records.resolve(ref);
    if (rec.state !== 'running') throw new BadStateError(`cannot attach to container ${rec.name}: it is not running`, 'start it first, or read its output with "berth logs"');
    const exited = () => this.deps.runtime.monitor.exitStatus(rec.id).then((s) => s !== undefined);
    await this.deps.runtime.monitor.attach(rec.id, { ...io, logPath: containerPaths(this.layout, rec.id).log, tty: rec.tty }, exited);
    const st = await this.deps.runtime.monitor.exitStatus(rec.id);
    return { exitCode: st?.exitCode };
  }

  async wait(ref: string, opts: { condition?: 'not-running' | 'next-exit' | 'removed' } = {}): Promise<number> {
    const rec = await this.records.resolve(ref);
    if (!LIVE.has(rec.state) && opts.condition !== 'next-exit' && opts.condition !== 'removed') return rec.exitCode;
    const code = LIVE.has(rec.state) ? await this.deps.runtime.monitor.waitExit(rec.id) : rec.exitCode;
    if (opts.condition === 'removed') {
      while (await this.records.load(rec.id)) await sleep(50);
    } else {
      await this.cleanup(rec.id);
    }
    return code;
  }

  // ------------------------------------------------------------------ exit handling

  /**
   * Runs when a container's process has ended: by the monitor's exit command, by an attached `run`, by
   * stop and rm. Idempotent. Tears down what the run needed, records the exit, then applies --rm or the
   * restart policy (with Docker's back-off) outside the lock.
   */
  async cleanup(ref: string): Promise<void> {
    const rec0 = await this.records.load(ref) ?? await this.records.resolve(ref).catch(() => undefined);
    if (!rec0) return;
    const lock = containerPaths(this.layout, rec0.id).lock;
    const next = await withLock(lock, async () => {
      const rec = await this.records.load(rec0.id);
      if (!rec || !LIVE.has(rec.state)) return undefined;
      if (!(await this.finishExit(rec))) return undefined;
      // A manual `restart` does not remove a --rm container (Docker's HasBeenManuallyRestarted).
      if (rec.autoRemove && !rec.keepOnExit) return 'remove' as const;
      if (shouldRestart(rec)) {
        rec.state = 'restarting';
        // Who will restart it after the back-off: if that process dies, repair sees it (see repairInterrupted).
        rec.restarter = processTag(process.pid);
        await this.records.save(rec);
        return 'restart' as const;
      }
      return undefined;
    });
    if (next === 'remove') {
      await this.remove(rec0.id, { force: true });
    } else if (next === 'restart') {
      const rec = await this.mustLoad(rec0.id);
      await sleep(restartDelay(rec.restartCount));
      await withLock(lock, async () => {
        const cur = await this.records.load(rec0.id);
        if (!cur || cur.state !== 'restarting' || cur.manuallyStopped) return;
        delete cur.restarter;
        cur.restartCount += 1;
        await this.startLocked(cur);
      });
    }
  }

  /** Under the container lock: if its process has ended, tear down and record the exit. */
  private async finishExit(rec: ContainerRecord): Promise<boolean> {
    let status = await this.deps.runtime.monitor.exitStatus(rec.id);
    if (!status) {
      const st = await this.deps.runtime.runc.state(rec.id);
      if (st && st.status !== 'stopped') return false;
      // The monitor is gone without an exit file (reboot, or it was killed): nothing can tell the code.
      status = { exitCode: 255, finishedAt: new Date().toISOString() };
    }
    await runTeardown([
      () => this.deps.runtime.runc.delete(rec.id, { force: true }),
      () => this.deps.network.detach(rec.id),
      () => this.deps.snapshots.unmount(rec.id),
    ]);
    rec.state = 'exited';
    rec.exitCode = status.exitCode;
    rec.finishedAt = status.finishedAt;
    rec.oomKilled = !!status.oomKilled;
    rec.pid = 0;
    delete rec.phase;
    await this.records.save(rec);
    await this.events.emit('container', 'die', rec.id, { name: rec.name, exitCode: String(rec.exitCode) });
    return true;
  }

  /** For read-only views: a container whose exit the cleanup has not recorded yet shows as exited. */
  private async observed(rec: ContainerRecord): Promise<ContainerRecord> {
    if (!LIVE.has(rec.state) || rec.state === 'restarting') return rec;
    const status = await this.deps.runtime.monitor.exitStatus(rec.id);
    if (status) return { ...rec, state: 'exited', exitCode: status.exitCode, finishedAt: status.finishedAt, pid: 0 };
    if (rec.pid && !(await pidAlive(rec.pid))) return { ...rec, state: 'exited', exitCode: 255, pid: 0 };
    return rec;
  }

  private async syncExited(rec: ContainerRecord): Promise<void> {
    if (LIVE.has(rec.state) && rec.state !== 'restarting') await this.finishExit(rec);
  }

  // ------------------------------------------------------------------ stop / kill / restart / remove

  async stop(ref: string, opts: { timeout?: number; signal?: string; forRestart?: boolean } = {}): Promise<void> {
    const rec = await this.records.resolve(ref);
    const live = await this.observed(rec);
    if (live.state === 'restarting') {
      // Only a container still waiting out its back-off becomes exited; one already started again is
      // stopped the normal way below.
      if (await this.markStopped(rec.id, { keepOnExit: opts.forRestart, fromRestarting: true })) return;
    }
    if (!LIVE.has(live.state)) {
      // Exited but not cleaned up yet: a stop still means "do not restart it".
      await this.markStopped(rec.id, { keepOnExit: opts.forRestart });
      return this.cleanup(rec.id);
    }
    await this.markStopped(rec.id, { keepOnExit: opts.forRestart });
    const signal = normalizeSignal(opts.signal ?? rec.stopSignal, '--signal');
    const stopTimeout = opts.timeout ?? rec.stopTimeout;
    // Docker: a negative timeout waits for the container however long it takes.
    const timeout = stopTimeout < 0 ? Infinity : stopTimeout * 1000;
    if (live.state === 'paused') await this.deps.runtime.runc.resume(rec.id).catch(() => {});
    await this.deps.runtime.runc.kill(rec.id, signal).catch(ignoreGone);
    if (!(await this.waitExitFor(rec.id, timeout))) {
      await this.deps.runtime.runc.kill(rec.id, 'SIGKILL', { all: true }).catch(ignoreGone);
      await this.waitExitFor(rec.id, 10_000);
    }
    await this.cleanup(rec.id);
    await this.events.emit('container', 'stop', rec.id, { name: rec.name });
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const rec = await this.records.resolve(ref);
    const sig = normalizeSignal(signal);
    const live = await this.observed(rec);
    if (live.state !== 'running' && live.state !== 'paused') {
      throw new BadStateError(`cannot kill container ${rec.name}: it is not running`, 'start it first');
    }
    // Docker treats a kill with the stop signal or SIGKILL as a manual stop: restart policies stand down.
    if (sig === 'SIGKILL' || sig === rec.stopSignal) await this.markStopped(rec.id);
    await this.deps.runtime.runc.kill(rec.id, sig);
    await this.events.emit('container', 'kill', rec.id, { name: rec.name, signal: sig });
    if (sig === 'SIGKILL') {
      await this.waitExitFor(rec.id, 10_000);
      await this.cleanup(rec.id);
    }
  }

  async restart(ref: string, opts: { timeout?: number } = {}): Promise<void> {
    await this.stop(ref, { ...opts, forRestart: true });
    await this.start(ref);
    const rec = await this.records.resolve(ref);
    await this.events.emit('container', 'restart', rec.id, { name: rec.name });
  }

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const rec = await this.records.resolve(ref);
    const live = await this.observed(rec);
    if (LIVE.has(live.state)) {
      if (!opts.force) {
        throw new BadStateError(`cannot remove container ${rec.name}: container is ${live.state}`,
          'stop the container before removing, or force remove with "berth rm -f"');
      }
      await this.markStopped(rec.id);
      if (live.state === 'paused') await this.deps.runtime.runc.resume(rec.id).catch(() => {});
      await this.deps.runtime.runc.kill(rec.id, 'SIGKILL', { all: true }).catch(ignoreGone);
      await this.waitExitFor(rec.id, 10_000);
      await this.cleanup(rec.id);
    }
    await withLock(containerPaths(this.layout, rec.id).lock, async () => {
      const cur = await this.records.load(rec.id);
      if (!cur) return;
      // Checked again under the lock: a `start` may have won the race since the check above.
      const now = await this.observed(cur);
      if (LIVE.has(now.state) && now.state !== 'restarting' && !opts.force) {
        throw new BadStateError(`cannot remove container ${rec.name}: container is ${now.state}`,
          'stop the container before removing, or force remove with "berth rm -f"');
      }
      if (LIVE.has(now.state) && now.state !== 'restarting') {
        throw new BadStateError(`container ${rec.name} was started again while it was being removed`, 'run the command again');
      }
      cur.phase = 'removing';
      cur.state = 'removing';
      await this.records.save(cur);
      await this.destroy(cur);
    });
    await this.events.emit('container', 'destroy', rec.id, { name: rec.name });
  }

  /** Undoes everything a container owns. "Already gone" is success, so it also finishes a crashed remove. */
  private async destroy(rec: ContainerRecord): Promise<void> {
    await runTeardown([
      // The failpoint is rm's (its main caller); a create undone here or a repair is never armed.
      () => this.deps.runtime.runc.delete(rec.id, { force: true }).then(() => failpoint('container.rm.after-runc-delete')),
      () => this.deps.network.detach(rec.id),
      () => this.deps.snapshots.remove(rec.id),
      () => this.deps.runtime.cgroups.remove(`/berth/${rec.id}`),
      () => this.deps.runtime.monitor.clearExit(rec.id),
      // The name before the record: a kill between the two leaves a record that repair removes again,
      // never a name held by a container that no record shows.
      () => this.records.releaseName(rec.name, rec.id),
      () => this.records.removeDir(rec.id),
    ]);
  }

  /**
   * Records a user's stop, which suspends restart policies. With `fromRestarting`, also ends a pending
   * restart, but only if the container is still waiting for it: returns whether it did.
   */
  private async markStopped(id: string, opts: { keepOnExit?: boolean; fromRestarting?: boolean } = {}): Promise<boolean> {
    return withLock(containerPaths(this.layout, id).lock, async () => {
      const rec = await this.mustLoad(id);
      rec.manuallyStopped = true;
      if (opts.keepOnExit) rec.keepOnExit = true;
      const ended = !!opts.fromRestarting && rec.state === 'restarting';
      if (ended) {
        rec.state = 'exited';
        delete rec.restarter;
      }
      await this.records.save(rec);
      return ended;
    });
  }

  private async waitExitFor(id: string, ms: number): Promise<boolean> {
    const ac = new AbortController();
    const timer = Number.isFinite(ms) ? setTimeout(() => ac.abort(), ms) : undefined;
    try {
      await this.deps.runtime.monitor.waitExit(id, ac.signal);
      return true;
    } catch {
      return (await this.deps.runtime.monitor.exitStatus(id)) !== undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  async prune(): Promise<{ deleted: string[] }> {
    const deleted: string[] = [];
    for (const rec of await this.records.all()) {
      const live = await this.observed(rec);
      if (LIVE.has(live.state)) continue;
      try {
        await this.remove(rec.id);
      } catch (err) {
        if (err instanceof BadStateError || err instanceof NotFoundError) continue; // started or removed meanwhile
        throw err;
      }
      deleted.push(rec.id);
    }
    return { deleted };
  }

  // ------------------------------------------------------------------ pause / update / rename

  async pause(ref: string): Promise<void> {
    await this.setPaused(ref, true);
  }

  async unpause(ref: string): Promise<void> {
    await this.setPaused(ref, false);
  }

  private async setPaused(ref: string, paused: boolean): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    await withLock(containerPaths(this.layout, rec0.id).lock, async () => {
      const rec = await this.observed(await this.mustLoad(rec0.id));
      const want = paused ? 'running' : 'paused';
      if (rec.state !== want) {
        throw new BadStateError(`container ${rec.name} is ${rec.state === 'paused' ? 'paused' : `not ${want}`}`,
          paused ? 'only a running container can be paused' : 'only a paused container can be unpaused');
      }
      await (paused ? this.deps.runtime.runc.pause(rec.id) : this.deps.runtime.runc.resume(rec.id));
      rec.state = paused ? 'paused' : 'running';
      await this.records.save(rec);
    });
    await this.events.emit('container', paused ? 'pause' : 'unpause', rec0.id, { name: rec0.name });
  }

  async update(ref: string, changes: ResourceRequest & { restart?: string }): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    const { restart, ...resources } = changes;
    const policy = restart !== undefined ? parseRestartPolicy(restart) : undefined;
    const host = this.deps.host;
    const merged = { ...(rec0.request.resources ?? {}), ...stripUndefined(resources) };
    const linux = this.deps.bundle.parseResources(merged, host);
    await withLock(containerPaths(this.layout, rec0.id).lock, async () => {
      const rec = await this.observed(await this.mustLoad(rec0.id));
      if (policy && rec.autoRemove && policy.name !== 'no') {
        throw new InvalidArgumentError('--restart', 'cannot set a restart policy on a container started with --rm');
      }
      if (rec.state === 'running' || rec.state === 'paused') await this.deps.runtime.runc.update(rec.id, linux);
      // The bundle keeps the limits in force, for inspect now and for the next start.
      const bundle = containerPaths(this.layout, rec.id).bundle;
      const spec = await readJson<Spec>(path.join(bundle, 'config.json')).catch(() => undefined);
      if (spec?.linux) await this.deps.bundle.writeBundle(bundle, { ...spec, linux: { ...spec.linux, resources: { ...spec.linux.resources, ...linux } } });
      rec.request = { ...rec.request, resources: merged, ...(restart !== undefined ? { restart } : {}) };
      if (policy) rec.restartPolicy = policy;
      await this.records.save(rec);
    });
    await this.events.emit('container', 'update', rec0.id, { name: rec0.name });
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    if (rec0.name === newName) throw new InvalidArgumentError('name', `container is already named ${newName}`);
    await this.records.reserveName(newName, rec0.id);
    await withLock(containerPaths(this.layout, rec0.id).lock, async () => {
      const rec = await this.mustLoad(rec0.id);
      const old = rec.name;
      rec.name = newName;
      await this.records.save(rec);
      await this.records.releaseName(old, rec.id);
    });
    await this.events.emit('container', 'rename', rec0.id, { name: newName, oldName: rec0.name });
  }

  // ------------------------------------------------------------------ networks

  /**
   * docker network connect: a running container gets the endpoint now (and a rewritten /etc/hosts);
   * a stopped one gets it at its next start.
   */
  async connect(network: string, ref: string, opts: { ip?: string; ip6?: string; aliases?: string[] } = {}): Promise<void> {
    await this.changeNetworks(ref, network, 'connect', async (rec) => {
      const nets = rec.request.network?.networks ?? ['bridge'];
      if (nets.includes(network)) throw new BadStateError(`container ${rec.name} is already connected to network ${network}`, 'nothing to do');
      rec.request = { ...rec.request, network: { ...rec.request.network, networks: [...nets, network] } };
      return rec.state === 'running' || rec.state === 'paused' ? this.deps.network.connect(network, rec.id, opts) : undefined;
    });
  }

  async disconnect(network: string, ref: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.changeNetworks(ref, network, 'disconnect', async (rec) => {
      const nets = rec.request.network?.networks ?? ['bridge'];
      if (!nets.includes(network) && !opts.force) throw new BadStateError(`container ${rec.name} is not connected to network ${network}`, 'see "berth inspect" for its networks');
      rec.request = { ...rec.request, network: { ...rec.request.network, networks: nets.filter((n) => n !== network) } };
      return rec.state === 'running' || rec.state === 'paused' ? this.deps.network.disconnect(network, rec.id, opts) : undefined;
    });
  }

  private async changeNetworks(ref: string, network: string, action: 'connect' | 'disconnect', change: (rec: ContainerRecord) => Promise<SandboxStatus | undefined>): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    await withLock(containerPaths(this.layout, rec0.id).lock, async () => {
      const rec = await this.observed(await this.mustLoad(rec0.id));
      const status = await change(rec);
      if (status) {
        await writeFileAtomic(containerPaths(this.layout, rec.id).hosts, status.hostsFile, STORE_MODES.mounted);
        rec.networks = status.endpoints;
        rec.ports = status.ports;
      }
      await this.records.save(rec);
    });
    await this.events.emit('network', action, network, { container: rec0.id });
  }

  // ------------------------------------------------------------------ views

  async list(opts: { all?: boolean; filters?: string[]; last?: number } = {}): Promise<ContainerSummary[]> {
    await this.repairInterrupted();
    const recs = await Promise.all((await this.records.all()).map((r) => this.observed(r)));
    const filters = parseFilters(opts.filters ?? []);
    let rows = recs
      .filter((r) => opts.all || opts.last !== undefined || filters.has('status') || filters.has('exited') || LIVE.has(r.state))
      .filter((r) => matchesFilters(r, filters))
      .sort((a, b) => b.created.localeCompare(a.created));
    if (opts.last !== undefined && opts.last >= 0) rows = rows.slice(0, opts.last);
    return rows.map((r) => summaryView(r));
  }

  async inspect(ref: string): Promise<ContainerInspect> {
    const rec = await this.observed(await this.records.resolve(ref));
    const p = containerPaths(this.layout, rec.id);
    const spec = await readJson<Spec>(path.join(p.bundle, 'config.json')).catch(() => undefined);
    return inspectView(rec, spec, p);
  }

  /** Containers of `image` that Docker counts as running (paused, restarting too): image removal refuses them. */
  async runningContainersOf(image: string): Promise<string[]> {
    const recs = (await this.records.all()).filter((r) => r.imageId === image);
    return (await Promise.all(recs.map((r) => this.observed(r)))).filter((r) => LIVE.has(r.state)).map((r) => r.id);
  }

  async port(ref: string): Promise<PortBinding[]> {
    return (await this.records.resolve(ref)).ports;
  }

  async *logs(ref: string, opts: LogOptions = {}): AsyncIterable<LogEntry> {
    const rec = await this.records.resolve(ref);
    const stopWhen = async () => {
      const cur = await this.records.load(rec.id);
      return !cur || !LIVE.has((await this.observed(cur)).state);
    };
    yield* this.deps.runtime.monitor.readLog(containerPaths(this.layout, rec.id).log, { ...opts, stopWhen });
  }

  async exec(ref: string, req: ExecRequest, io: StdioStreams = {}): Promise<{ exitCode?: number; execId: string }> {
    if (!req.command.length) throw new InvalidArgumentError('command', 'exec needs a command', 'e.g. berth exec CONTAINER sh');
    const rec = await this.observed(await this.records.resolve(ref));
    if (rec.state === 'paused') throw new BadStateError(`container ${rec.name} is paused`, `unpause it first: berth unpause ${rec.name}`);
    if (rec.state !== 'running') throw new BadStateError(`container ${rec.name} is not running`, `start it first: berth start ${rec.name}`);
    const p = containerPaths(this.layout, rec.id);
    const imageConfig = await readImageConfig(this.layout, rec.id);
    const current = await readJson<Spec>(path.join(p.bundle, 'config.json'));
    // The exec process is the container's process with the exec's overrides, resolved by the same builder.
    const execRec: ContainerRecord = {
      ...rec,
      request: {
        ...rec.request, command: req.command, entrypoint: [''], init: false, tty: !!req.tty,
        env: [...(rec.request.env ?? []), ...(req.env ?? [])], user: req.user ?? rec.request.user,
        workdir: req.workdir ?? rec.request.workdir, privileged: req.privileged || rec.request.privileged,
      },
    };
    const { spec } = await this.specs.build(execRec, current.root?.path ?? '', imageConfig, undefined);
    const proc = { ...spec.process!, env: this.deps.bundle.mergeEnv(current.process?.env ?? [], req.env ?? []) };
    const execId = newContainerId();
    const res = await this.deps.runtime.runc.exec(rec.id, { process: proc, detach: !!req.detach, io: req.interactive ? io : { ...io, stdin: undefined } });
    return { exitCode: res.exitCode, execId };
  }

  async top(ref: string, psArgs: string[] = []): Promise<TopResult> {
    return this.observer.top(await this.observed(await this.records.resolve(ref)), psArgs);
  }

  async stats(refs?: string[]): Promise<ContainerStats[]> {
    const recs = refs?.length
      ? await Promise.all(refs.map((r) => this.records.resolve(r)))
      : (await this.records.all()).filter((r) => r.state === 'running' || r.state === 'paused');
    return this.observer.stats(recs);
  }

  // ------------------------------------------------------------------ repair

  /**
   * Finishes or undoes the work of commands that were killed half-way (records with a `phase`). A record
   * whose lock another live process holds is left alone: that command is still running.
   */
  async repairInterrupted(): Promise<string[]> {
    const repaired: string[] = [];
    const stale = await this.staleLocks();
    await this.records.sweepRemovals();
    for (const rec of await this.records.all()) {
      if (rec.state === 'restarting' && !tagAlive(rec.restarter)) {
        // The process waiting out the back-off died (reboot, kill): the restart will not happen.
        await withLock(containerPaths(this.layout, rec.id).lock, async () => {
          const cur = await this.records.load(rec.id);
          if (!cur || cur.state !== 'restarting' || tagAlive(cur.restarter)) return;
          cur.state = 'exited';
          delete cur.restarter;
          await this.records.save(cur);
          repaired.push(rec.id);
        });
        continue;
      }
      if (!rec.phase && LIVE.has(rec.state) && rec.state !== 'restarting' && (await this.deps.runtime.monitor.exitStatus(rec.id))
        && !(await attachedAlive(containerPaths(this.layout, rec.id).attached))) {
        // Exited while nobody ran its cleanup (an attached run was killed): finish it now.
        await this.cleanup(rec.id).catch(() => {});
        repaired.push(rec.id);
        continue;
      }
      if (!rec.phase && !stale.has(rec.id)) continue;
      const lock = await acquireLock(containerPaths(this.layout, rec.id).lock, 0).catch(() => undefined);
      if (!lock) continue;
      try {
        // A command killed under this lock may have been writing a file of the container.
        if (stale.has(rec.id)) await removeStaleTemps(containerPaths(this.layout, rec.id).dir);
        const cur = await this.records.load(rec.id);
        if (!cur?.phase) continue;
        if (cur.phase === 'creating' || cur.phase === 'removing') {
          await this.destroy(cur);
        } else if (cur.phase === 'starting') {
          const st = await this.deps.runtime.runc.state(cur.id);
          if (st?.status === 'running' || st?.status === 'paused') {
            cur.state = st.status;
            cur.pid = st.pid;
            cur.startedAt = cur.startedAt === ZERO_TIME ? new Date().toISOString() : cur.startedAt;
          } else {
            await runTeardown([
              () => this.deps.runtime.runc.delete(cur.id, { force: true }),
              () => this.deps.network.detach(cur.id),
              () => this.deps.snapshots.unmount(cur.id),
            ]);
            cur.error = 'start was interrupted';
          }
          delete cur.phase;
          await this.records.save(cur);
        } else {
          delete cur.phase;
          await this.records.save(cur);
        }
        repaired.push(rec.id);
      } finally {
        await lock.release();
      }
    }
    return repaired;
  }

  /**
   * Ids of containers whose lock a killed command left behind: the evidence that something may need
   * finishing, found with one readdir. The locks of containers that are gone are removed here (no later
   * taker would ever find them), with stranded names and record-less folders; the others are taken by
   * repair.
   */
  private async staleLocks(): Promise<Set<string>> {
    const stale = new Set<string>();
    for (const f of await readdirIfExists(this.layout.locks)) {
      const id = /^ctr-([0-9a-f]{64})\.lock$/.exec(f)?.[1];
      if (id && (await isStaleLock(path.join(this.layout.locks, f)))) stale.add(id);
    }
    if (!stale.size) return stale;
    // The network layer works under the container's lock too: its locks may be stale as well.
    await this.deps.network.repair();
    await this.records.sweepNames();
    for (const id of stale) {
      if (await this.records.load(id)) continue;
      stale.delete(id);
      // A create killed while writing its first record leaves a folder with no record in it.
      const lock = await acquireLock(containerPaths(this.layout, id).lock, 0).catch(() => undefined);
      if (!lock) continue;
      try {
        if (!(await this.records.load(id))) await this.records.removeDir(id);
      } finally {
        await lock.release();
      }
    }
    return stale;
  }

  /**
   * Full reconciliation for `system prune`: interrupted commands, then host objects that no record owns
   * (runc containers, snapshots, network sandboxes of removed containers).
   */
  async reconcile(): Promise<string[]> {
    const cleaned = await this.repairInterrupted();
    const ids = new Set<string>(await this.records.ids());
    for (const id of await this.deps.runtime.runc.list()) {
      if (ids.has(id)) continue;
      await this.deps.runtime.runc.delete(id, { force: true }).catch(() => {});
      cleaned.push(`runc:${id}`);
    }
    for (const snap of await this.deps.snapshots.list()) {
      if (snap.key.startsWith('image-') || ids.has(snap.key)) continue;
      await this.deps.snapshots.remove(snap.key);
      cleaned.push(`snapshot:${snap.key}`);
    }
    await this.deps.snapshots.repair();
    const live = new Set<string>();
    for (const rec of await this.records.all()) {
      const o = await this.observed(rec);
      // A container some command is still creating or starting owns its sandbox too.
      if (LIVE.has(o.state) || rec.phase) live.add(rec.id);
      else if (rec.state === 'running' || rec.state === 'paused') await this.cleanup(rec.id).catch(() => {});
    }
    cleaned.push(...(await this.deps.network.reconcile(live)).map((x) => `network:${x}`));
    return cleaned;
  }

  // ------------------------------------------------------------------ helpers

  private async mustLoad(id: string): Promise<ContainerRecord> {
    const rec = await this.records.load(id);
    if (!rec) throw new NotFoundError('container', id);
    return rec;
  }

  private async resolveImage(ref: string) {
    try {
      return await this.deps.images.resolve(ref);
    } catch (err) {
      // The embedded default image is built on first use, as docker pulls on first use.
      if (err instanceof NotFoundError && DEFAULT_IMAGE.test(ref)) {
        await this.deps.images.ensureDefault();
        return this.deps.images.resolve(ref);
      }
      throw err;
    }
  }

  private async freeGeneratedName(): Promise<string> {
    for (let i = 0; i < 20; i++) {
      const name = generateName();
      if (!(await this.records.idForName(name))) return name;
    }
    return `${generateName()}_${shortId(newContainerId()).slice(0, 6)}`;
  }

}



async function attachedAlive(file: string): Promise<boolean> {
  return tagAlive((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
}

/** "pid starttime": names a process so that a reused pid is not taken for it. */
function processTag(pid: number): string {
  return `${pid} ${processStartTime(pid) ?? 0}`;
}

function tagAlive(tag: string | undefined): boolean {
  const [pid, start] = (tag ?? '').split(' ');
  const actual = Number(pid) > 0 ? processStartTime(Number(pid)) : undefined;
  return actual !== undefined && (start === undefined || start === '0' || actual === start);
}

async function pidAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function ignoreGone(err: unknown): void {
  if (!isAlreadyGone(err)) throw err;
}


export type { ContainerId };
