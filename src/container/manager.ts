import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  AttachOptions, ContainerStats, CopyOptions, CopyResult, ExecRequest, LogEntry, LogOptions, PathStat, PortBinding, RunOptions, StartOptions, StdioStreams, TopResult,
} from '../types.js';
import { BadStateError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { newContainerId } from '../ids.js';
import type { CreateRequest, ResourceRequest } from '../options.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import { readJson, writeFileAtomic, writeStreamAtomic } from '../util/fs.js';
import { processTag } from '../util/liveness.js';
import { withLock } from '../util/lock.js';
import { stripUndefined } from '../util/object.js';
import { EventLog } from '../events.js';
import type { Readable, Writable } from 'node:stream';
import { copyFromContainer, copyToContainer, extractIntoContainer, pathKind, statInContainer } from './copy.js';
import { pipeline } from 'node:stream/promises';
import type { Change, StorageDriverName } from '../storage/index.js';
import { upgradeRecord } from './config.js';
import { commitContainer, containerChanges, exportContainer, mountPoints, type CommitOptions } from './filesystem.js';
import { eventAttributes, LIVE, mustLoad, observed, setState, type ContainerContext } from './context.js';
import { createContainer } from './create.js';
import { DEFAULT_DETACH_KEYS, escapeStdin, parseDetachKeys } from './detach.js';
import { bootContainers, type BootResult } from './boot.js';
import { cleanupContainer } from './exit.js';
import { noticedView, noticeLoss, resolveNoticed } from './lost.js';
import { matchesFilters, parseFilters } from './filters.js';
import { Observer } from './observe.js';
import { runHealthcheck, withHealth, type HealthRun, type ListedView, type RecordView } from './health.js';
import type { ContainerDeps, SandboxStatus, Spec } from './ports.js';
import { containerPaths, RecordStore, type AttachedStreams, type ContainerRecord } from './record.js';
import { pruneContainers, removeContainer } from './remove.js';
import { reconcile, repairInterrupted } from './repair.js';
import { SpecAssembler } from './spec.js';
import { clearAttached, startContainer } from './start.js';
import { parseRestartPolicy } from './status.js';
import { killContainer, restartContainer, stopContainer } from './stop.js';

/** A container as `inspect` needs it: the record (config and state) and where its files are. */
export interface ContainerDetails {
  record: RecordView;
  paths: ReturnType<typeof containerPaths>;
  /** when asked for (inspect -s) */
  size?: ContainerSize;
  /** how its root filesystem is mounted (its snapshot's driver) */
  driver: StorageDriverName;
}

/** bytes */
export interface ContainerSize {
  rw: number;
  rootFs: number;
}

/**
 * The container layer's face: create → start → (exit → cleanup → restart?) → stop → remove, one file per
 * verb (create.ts, start.ts, exit.ts, stop.ts, remove.ts, repair.ts), each working on the records under the
 * container's lock, which is never held while waiting on the container's process. Every state change goes
 * through context.ts `setState` (state.ts says which are allowed); every option was parsed once at create
 * (config.ts). Views are the API's to shape: this layer returns records.
 */
export class ContainerManager {
  readonly records: RecordStore;
  readonly events: EventLog;
  private readonly ctx: ContainerContext;
  private readonly observer: Observer;

  constructor(layout: StoreLayout, private readonly deps: ContainerDeps) {
    const records: RecordStore = new RecordStore(layout, (old, imageConfig) => upgradeRecord(this.ctx, old, imageConfig));
    this.records = records;
    this.events = new EventLog(layout);
    this.ctx = { layout, deps, records, events: this.events, specs: new SpecAssembler(layout, deps, records) };
    this.observer = new Observer(deps);
  }

  // ------------------------------------------------------------------ lifecycle

  async create(req: CreateRequest): Promise<{ id: string; warnings: string[] }> {
    // No full repair pass here: a command killed under a lock is repaired by the engine's stale-lock check
    // (every command), a name held by a dead create is freed by reserveName, and the rest (an exit nobody
    // recorded, a restart whose waiter died) is what ps and system boot reconcile. A pass over every
    // record would make each create cost more with every container in the root (issue 20).
    return createContainer(this.ctx, req);
  }

  async start(ref: string, opts: StartOptions = {}): Promise<void> {
    if (opts.detachKeys !== undefined) parseDetachKeys(opts.detachKeys);
    try {
      await startContainer(this.ctx, ref, opts.terminal);
    } catch (err) {
      // As Docker's daemon: a --rm container whose start failed is removed, since no exit will ever remove
      // it, and a client waiting for its removal (the docker CLI's `run --rm`) would wait forever.
      const rec = await resolveNoticed(this.ctx, ref).catch(() => undefined);
      if (rec?.config.autoRemove && (await mustLoad(this.ctx, rec.id).then((r) => r.state !== 'running', () => false))) {
        await this.remove(rec.id, { force: true }).catch(() => {});
      }
      throw err;
    }
  }

  async run(req: CreateRequest, opts: RunOptions = {}): Promise<{ id: string; exitCode?: number; detached?: boolean; warnings: string[] }> {
    if (opts.detach && req.attach?.length) throw new InvalidArgumentError('--attach', 'conflicting options: -a and -d', 'attach to a detached container later with "berth attach"');
    const detachKeys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS);
    const { id, warnings } = await this.create(opts.detach ? { ...req, attach: [] } : req);
    opts.onCreated?.(id);
    const p = containerPaths(this.ctx.layout, id);
    // The exit work is ours while we are attached: the monitor's exit hook stands down while this process lives.
    if (!opts.detach) await writeFileAtomic(p.attached, processTag(process.pid) + '\n');
    try {
      await this.start(id, { terminal: opts.detach ? undefined : opts.io?.terminal });
    } catch (err) {
      if (req.autoRemove) await this.remove(id, { force: true }).catch(() => {});
      throw err;
    }
    if (opts.detach) return { id, warnings };
    const rec = await mustLoad(this.ctx, id);
    const io = attachedOnly(opts.io ?? {}, rec.config.attach);
    // Docker reads the detach keys only from a tty's stdin; without a tty every byte goes to the container.
    let detached = false;
    const left = new AbortController();
    if (rec.config.tty && io.stdin) {
      io.stdin = escapeStdin(io.stdin, detachKeys, () => {
        detached = true;
        left.abort();
      });
    }
    const monitor = this.deps.runtime.monitor;
    const exited = async () => detached || (await this.ended(id));
    const attached = monitor.attach(id, { ...io, logPath: p.log, tty: rec.config.tty }, exited);
    const exitCode = await monitor.waitExit(id, left.signal).catch((err: unknown) => {
      if (detached) return undefined;
      return this.lostExitCode(id, err);
    });
    await attached;
    if (exitCode === undefined) {
      // The container runs on: its monitor's exit hook does the exit work (and --rm) once we are gone.
      await clearAttached(this.ctx, id);
      return { id, detached: true, warnings };
    }
    await this.cleanup(id);
    await clearAttached(this.ctx, id);
    return { id, exitCode, warnings };
  }

  /**
   * The exit code a waiter reports when the monitor died while it waited (waitExit's error): the loss is
   * recorded (lost.ts) and its code returned; any other error is the caller's.
   */
  private async lostExitCode(id: string, err: unknown): Promise<number> {
    const rec = await this.records.load(id);
    // Removed meanwhile (a --rm container's exit hook, an rm -f), its exit file with it: "no such
    // container", which the service answers from the container's die event for a wait on "removed".
    if (!rec) throw new NotFoundError('container', id, undefined, { cause: err });
    const now = await noticeLoss(this.ctx, rec).catch(() => undefined);
    if (!now || now.state === 'running' || now.state === 'paused') throw err;
    return now.exitCode;
  }

  /**
   * An attached client stops following when the exit is recorded, or when someone else already removed
   * the container (rm -f deletes the exit file with it: waiting for that file would wait forever).
   */
  private async ended(id: string): Promise<boolean> {
    return (await this.deps.runtime.monitor.exitStatus(id)) !== undefined || !(await this.records.load(id));
  }

  async attach(ref: string, io: StdioStreams, opts: AttachOptions = {}): Promise<{ exitCode?: number; detached?: boolean }> {
    const detachKeys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS);
    const rec = await resolveNoticed(this.ctx, ref);
    if (rec.state !== 'running') throw new BadStateError(`cannot attach to container ${rec.name}: it is not running`, 'start it first, or read its output with "berth logs"');
    let detached = false;
    const stdin = io.stdin && rec.config.tty ? escapeStdin(io.stdin, detachKeys, () => { detached = true; }) : io.stdin;
    const monitor = this.deps.runtime.monitor;
    const exited = async () => detached || !!opts.signal?.aborted || (await this.ended(rec.id));
    const fromEnd = opts.replay === false;
    await monitor.attach(rec.id, { ...io, ...(stdin ? { stdin } : {}), logPath: containerPaths(this.ctx.layout, rec.id).log, tty: rec.config.tty, fromEnd }, exited);
    if (detached || opts.signal?.aborted) return { detached: true };
    const st = await monitor.exitStatus(rec.id);
    return { exitCode: st?.exitCode };
  }

  async wait(ref: string, opts: { condition?: 'not-running' | 'next-exit' | 'removed'; signal?: AbortSignal } = {}): Promise<number> {
    let rec = await resolveNoticed(this.ctx, ref);
    let live = rec.state === 'running' || rec.state === 'paused';
    if (!live && opts.condition !== 'next-exit' && opts.condition !== 'removed') return rec.exitCode;
    const { signal } = opts;
    let code = rec.exitCode;
    if (!live) {
      // Docker's next-exit and removed wait for a run that has not begun: `docker run` asks before it
      // starts the container, and must get the code of that run, not of an earlier one.
      const ended = rec.finishedAt;
      for (;;) {
        signal?.throwIfAborted();
        const now = await this.records.load(rec.id);
        if (!now) return code;
        const seen = await observed(this.ctx, now);
        if (seen.state === 'running' || seen.state === 'paused') {
          rec = seen;
          live = true;
          break;
        }
        if (seen.finishedAt !== ended) {
          code = seen.exitCode;
          break;
        }
        await sleep(50);
      }
    }
    if (live) {
      code = await this.deps.runtime.monitor.waitExit(rec.id, signal).catch((err: unknown) => {
        if (signal?.aborted) throw err;
        return this.lostExitCode(rec.id, err);
      });
    }
    if (opts.condition === 'removed') {
      while (await this.records.load(rec.id)) {
        signal?.throwIfAborted();
        await sleep(50);
      }
    } else {
      await this.cleanup(rec.id);
    }
    return code;
  }

  cleanup(ref: string): Promise<void> {
    return cleanupContainer(this.ctx, ref);
  }

  stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<void> {
    return stopContainer(this.ctx, ref, opts);
  }

  kill(ref: string, signal?: string): Promise<void> {
    return killContainer(this.ctx, ref, signal);
  }

  restart(ref: string, opts: { timeout?: number } = {}): Promise<void> {
    return restartContainer(this.ctx, ref, opts);
  }

  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return removeContainer(this.ctx, ref, opts);
  }

  prune(opts: { filters?: string[] } = {}): Promise<{ deleted: string[] }> {
    return pruneContainers(this.ctx, opts.filters);
  }

  // ------------------------------------------------------------------ the filesystem as data

  /** docker cp out of the container */
  copyFrom(ref: string, src: string, dest: string | Writable, opts?: CopyOptions): Promise<CopyResult> {
    return copyFromContainer(this.ctx, ref, src, dest, opts);
  }

  /** docker cp into the container */
  copyTo(ref: string, dest: string, src: string | Readable, opts?: CopyOptions): Promise<CopyResult> {
    return copyToContainer(this.ctx, ref, dest, src, opts);
  }

  /** docker cp's stat of a container path */
  statPath(ref: string, cpath: string): Promise<PathStat> {
    return statInContainer(this.ctx, ref, cpath);
  }

  /** A build's COPY: `tar` extracted into the folder `dir` of a stopped container, missing folders made. */
  extractInto(ref: string, dir: string, tar: Readable, owner?: { uid: number; gid: number }): Promise<void> {
    return extractIntoContainer(this.ctx, ref, dir, tar, owner);
  }

  /** What a path is in a stopped container (links followed inside it). */
  pathKind(ref: string, cpath: string): Promise<'dir' | 'file' | 'missing'> {
    return pathKind(this.ctx, ref, cpath);
  }

  /** A build step's layer: what the container changed, as an OCI layer tar, its mount points left out. */
  async packLayer(ref: string): Promise<Readable> {
    const rec = await resolveNoticed(this.ctx, ref);
    return this.deps.snapshots.packChanges(rec.id, mountPoints(rec));
  }

  /** docker diff */
  diff(ref: string): Promise<Change[]> {
    return containerChanges(this.ctx, ref);
  }

  /** docker export: the root filesystem as a tar, into a stream or a file that appears only when complete */
  async export(ref: string, output: string | Writable): Promise<void> {
    const src = await exportContainer(this.ctx, ref);
    if (typeof output !== 'string') return pipeline(src, output, { end: false }).then(() => new Promise<void>((resolve) => output.write('', () => resolve())));
    await writeStreamAtomic(output, src);
  }

  /** docker commit: returns the new image's ID */
  commit(ref: string, opts: CommitOptions = {}): Promise<string> {
    return commitContainer(this.ctx, ref, opts);
  }

  // ------------------------------------------------------------------ pause / update / rename

  pause(ref: string): Promise<void> {
    return this.setPaused(ref, true);
  }

  unpause(ref: string): Promise<void> {
    return this.setPaused(ref, false);
  }

  private async setPaused(ref: string, paused: boolean): Promise<void> {
    const rec0 = await resolveNoticed(this.ctx, ref);
    await withLock(containerPaths(this.ctx.layout, rec0.id).lock, async () => {
      const rec = await mustLoad(this.ctx, rec0.id);
      const now = await observed(this.ctx, rec);
      const want = paused ? 'running' : 'paused';
      if (now.state !== want) {
        throw new BadStateError(`container ${rec.name} is ${now.state === 'paused' ? 'paused' : `not ${want}`}`,
          paused ? 'only a running container can be paused' : 'only a paused container can be unpaused');
      }
      await (paused ? this.deps.runtime.runc.pause(rec.id) : this.deps.runtime.runc.resume(rec.id));
      await setState(this.ctx, rec, paused ? 'paused' : 'running');
    });
  }

  /** docker update: the resources in the config (and so at every later start), and now in runc when running. */
  async update(ref: string, changes: ResourceRequest & { restart?: string }): Promise<void> {
    const rec0 = await resolveNoticed(this.ctx, ref);
    const { restart, ...resources } = changes;
    const policy = restart !== undefined ? parseRestartPolicy(restart) : undefined;
    const merged = { ...(rec0.config.request.resources ?? {}), ...stripUndefined(resources) };
    const linux = this.deps.bundle.parseResources(merged, this.deps.host);
    await withLock(containerPaths(this.ctx.layout, rec0.id).lock, async () => {
      const rec = await mustLoad(this.ctx, rec0.id);
      const now = await observed(this.ctx, rec);
      if (policy && rec.config.autoRemove && policy.name !== 'no') {
        throw new InvalidArgumentError('--restart', 'cannot set a restart policy on a container started with --rm');
      }
      // Only --restart (all a rootless container can change): nothing for runc, which has no cgroup to update.
      const limits = Object.values(linux).some((v) => v !== undefined);
      if (limits && (now.state === 'running' || now.state === 'paused')) await this.deps.runtime.runc.update(rec.id, linux);
      const planned = rec.config.spec.spec.linux!;
      planned.resources = { ...planned.resources, ...linux };
      // The bundle of a running container keeps the limits in force too, as runc's state says.
      const bundle = containerPaths(this.ctx.layout, rec.id).bundle;
      const spec = await readJson<Spec>(path.join(bundle, 'config.json')).catch(() => undefined);
      if (spec?.linux) await this.deps.bundle.writeBundle(bundle, { ...spec, linux: { ...spec.linux, resources: { ...spec.linux.resources, ...linux } } });
      rec.config.request = { ...rec.config.request, resources: merged, ...(restart !== undefined ? { restart } : {}) };
      if (policy) rec.config.restartPolicy = policy;
      await this.records.save(rec);
    });
    await this.events.emit('container', 'update', rec0.id, eventAttributes(rec0));
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec0 = await this.records.resolve(ref);
    if (rec0.name === newName) throw new InvalidArgumentError('name', `container is already named ${newName}`);
    await this.records.reserveName(newName, rec0.id);
    await withLock(containerPaths(this.ctx.layout, rec0.id).lock, async () => {
      const rec = await mustLoad(this.ctx, rec0.id);
      const old = rec.name;
      rec.name = newName;
      await this.records.save(rec);
      await this.records.releaseName(old, rec.id);
    });
    await this.events.emit('container', 'rename', rec0.id, eventAttributes(rec0, { name: newName, oldName: rec0.name }));
  }

  // ------------------------------------------------------------------ networks

  /**
   * docker network connect: a running container gets the endpoint now (and a rewritten /etc/hosts);
   * a stopped one gets it at its next start.
   */
  async connect(network: string, ref: string, opts: { ip?: string; ip6?: string; aliases?: string[] } = {}): Promise<void> {
    await this.changeNetworks(ref, network, 'connect', async (rec) => {
      const mode = rec.config.network.mode;
      if (mode.kind !== 'networks') throw new BadStateError(`container ${rec.name} uses ${mode.kind === 'container' ? 'another container\'s' : `the ${mode.kind}`} network`, 'a container on host, none or container:X cannot join other networks');
      // The network's own checks (it exists, it is not host or none), and its id for the config.
      const planned = (await this.deps.network.plan({ networks: [network] }, { exposedPorts: [] })).mode;
      const found = planned.kind === 'networks' ? planned.networks[0] : undefined;
      if (!found) throw new InvalidArgumentError('network', `${network} cannot be connected to`, 'connect a container to a bridge or macvlan network');
      if (mode.networks.some((n) => n.id === found.id)) throw new BadStateError(`container ${rec.name} is already connected to network ${network}`, 'nothing to do');
      mode.networks.push(found);
      return rec.state === 'running' || rec.state === 'paused' ? this.deps.network.connect(network, rec.id, opts) : undefined;
    });
  }

  async disconnect(network: string, ref: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.changeNetworks(ref, network, 'disconnect', async (rec) => {
      const mode = rec.config.network.mode;
      const on = mode.kind === 'networks' && mode.networks.some((n) => n.name === network || n.id.startsWith(network));
      if (!on && !opts.force) throw new BadStateError(`container ${rec.name} is not connected to network ${network}`, 'see "berth inspect" for its networks');
      if (mode.kind === 'networks') mode.networks = mode.networks.filter((n) => n.name !== network && !n.id.startsWith(network));
      return rec.state === 'running' || rec.state === 'paused' ? this.deps.network.disconnect(network, rec.id, opts) : undefined;
    });
  }

  private async changeNetworks(ref: string, network: string, action: 'connect' | 'disconnect', change: (rec: ContainerRecord) => Promise<SandboxStatus | undefined>): Promise<void> {
    const rec0 = await resolveNoticed(this.ctx, ref);
    await withLock(containerPaths(this.ctx.layout, rec0.id).lock, async () => {
      const rec = await mustLoad(this.ctx, rec0.id);
      const status = await change({ ...rec, state: (await observed(this.ctx, rec)).state });
      if (status) {
        await writeFileAtomic(containerPaths(this.ctx.layout, rec.id).hosts, status.hostsFile, STORE_MODES.mounted);
        rec.networks = status.endpoints;
        rec.ports = status.ports;
      }
      await this.records.save(rec);
    });
    await this.events.emit('network', action, network, { container: rec0.id });
  }

  // ------------------------------------------------------------------ views

  /** Records as `ps` shows them (a process that ended unrecorded shows as exited), newest first. */
  async list(opts: { all?: boolean; filters?: string[]; last?: number } = {}): Promise<ListedView[]> {
    const filters = parseFilters(opts.filters ?? []);
    const exits = await this.deps.runtime.monitor.exited();
    await repairInterrupted(this.ctx, exits);
    // before=/since= name containers, which must exist (Docker: "No such container").
    const createdOf = async (refs: readonly string[] = []) => Promise.all(refs.map(async (ref) => (await this.records.resolve(ref)).created));
    const bounds = { before: await createdOf(filters.values.get('before')), since: await createdOf(filters.values.get('since')) };
    // Listing is `ps`'s job, so it notices every lost monitor (lost.ts); other commands only their container's.
    const noticed = await Promise.all((await this.records.listed()).map((r) => noticedView(this.ctx, r, exits).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    })));
    const recs = await Promise.all(noticed.filter((r) => r !== undefined).map((r) => withHealth(this.ctx, r)));
    const anyState = filters.values.has('status') || filters.values.has('exited');
    let rows = recs
      .filter((r) => opts.all || opts.last !== undefined || anyState || LIVE.has(r.state))
      .filter((r) => matchesFilters(r, filters, bounds))
      // Code-point order, which is time order for these ISO strings; localeCompare costs a microsecond a pair.
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
    if (opts.last !== undefined && opts.last >= 0) rows = rows.slice(0, opts.last);
    return rows;
  }

  async inspect(ref: string, opts: { size?: boolean } = {}): Promise<ContainerDetails> {
    const record = await withHealth(this.ctx, await observed(this.ctx, await resolveNoticed(this.ctx, ref)));
    const driver = (await this.deps.snapshots.get(record.id))?.driver ?? 'overlay';
    return { record, paths: containerPaths(this.ctx.layout, record.id), driver, ...(opts.size ? { size: await this.size(record) } : {}) };
  }

  /**
   * Docker's SizeRw (what the container wrote: its snapshot's upper layer) and SizeRootFs (that plus its
   * image). A container whose image was removed with -f counts only what it wrote.
   */
  async size(rec: Pick<ContainerRecord, 'id'> & { config: Pick<ContainerRecord['config'], 'imageId'> }): Promise<ContainerSize> {
    const rw = await this.deps.snapshots.usage(rec.id).catch((err: unknown) => {
      if (err instanceof NotFoundError) return 0;
      throw err;
    });
    const image = await this.deps.images.inspect(rec.config.imageId).then((i) => i.size, (err: unknown) => {
      if (err instanceof NotFoundError) return 0;
      throw err;
    });
    return { rw, rootFs: image + rw };
  }

  /** Containers of `image` that Docker counts as running (paused, restarting too): image removal refuses them. */
  async runningContainersOf(image: string): Promise<string[]> {
    const recs = (await this.records.listed()).filter((r) => r.config.imageId === image);
    return (await Promise.all(recs.map((r) => observed(this.ctx, r)))).filter((r) => LIVE.has(r.state)).map((r) => r.id);
  }

  async port(ref: string): Promise<PortBinding[]> {
    return (await resolveNoticed(this.ctx, ref)).ports;
  }

  async *logs(ref: string, opts: LogOptions = {}): AsyncIterable<LogEntry> {
    const rec = await resolveNoticed(this.ctx, ref);
    const stopWhen = async () => {
      const cur = await this.records.load(rec.id);
      return !cur || !LIVE.has((await observed(this.ctx, cur)).state);
    };
    yield* this.deps.runtime.monitor.readLog(containerPaths(this.ctx.layout, rec.id).log, { ...opts, stopWhen });
  }

  async exec(ref: string, req: ExecRequest, io: StdioStreams = {}): Promise<{ exitCode?: number; execId: string }> {
    if (!req.command.length) throw new InvalidArgumentError('command', 'exec needs a command', 'e.g. berth exec CONTAINER sh');
    const rec = await observed(this.ctx, await resolveNoticed(this.ctx, ref));
    if (rec.state === 'paused') throw new BadStateError(`container ${rec.name} is paused`, `unpause it first: berth unpause ${rec.name}`);
    if (rec.state !== 'running') throw new BadStateError(`container ${rec.name} is not running`, `start it first: berth start ${rec.name}`);
    const current = await readJson<Spec>(path.join(containerPaths(this.ctx.layout, rec.id).bundle, 'config.json'));
    const userDb = await this.deps.bundle.readUserDb(current.root?.path ?? '');
    const proc = this.deps.bundle.execProcess(current.process!, req, userDb, req.privileged ? await this.deps.bundle.readHostCapabilities() : undefined);
    const res = await this.deps.runtime.runc.exec(rec.id, { process: proc, detach: !!req.detach, io: req.interactive ? io : { ...io, stdin: undefined } });
    return { exitCode: res.exitCode, execId: newContainerId() };
  }

  async top(ref: string, psArgs: string[] = []): Promise<TopResult> {
    return this.observer.top(await observed(this.ctx, await resolveNoticed(this.ctx, ref)), psArgs);
  }

  async stats(refs?: string[]): Promise<ContainerStats[]> {
    // Figures of zero would say "idle"; as Podman, say that they cannot be had.
    if (this.deps.host.rootless) {
      throw new BadStateError('stats are not available for rootless containers here: they have no cgroup of their own (cgroup v1 cannot delegate one to a user)',
        'run the container as root to see its figures');
    }
    const recs = refs?.length
      ? await Promise.all(refs.map((r) => resolveNoticed(this.ctx, r)))
      : (await this.records.all()).filter((r) => r.state === 'running' || r.state === 'paused');
    return this.observer.stats(recs);
  }

  /** One healthcheck now (`healthcheck run`); with `timer`, the timer's tick (health.ts). */
  healthcheck(ref: string, opts: { timer?: boolean } = {}): Promise<HealthRun> {
    return runHealthcheck(this.ctx, ref, opts);
  }

  // ------------------------------------------------------------------ repair

  repairInterrupted(): Promise<string[]> {
    return repairInterrupted(this.ctx);
  }

  reconcile(): Promise<string[]> {
    return reconcile(this.ctx);
  }

  boot(): Promise<BootResult> {
    return bootContainers(this.ctx);
  }
}

/** -a: only the streams asked for are wired; the others are neither read nor shown. */
function attachedOnly(io: StdioStreams, streams: AttachedStreams | undefined): StdioStreams {
  if (!streams) return io;
  const { stdin, stdout, stderr, ...rest } = io;
  return { ...rest, ...(streams.stdin && stdin ? { stdin } : {}), ...(streams.stdout && stdout ? { stdout } : {}), ...(streams.stderr && stderr ? { stderr } : {}) };
}
