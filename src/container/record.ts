import { promises as fsp } from 'node:fs';
import type { UsernsConfig } from './userns.js';
import path from 'node:path';
import type { PortBinding } from '../types.js';
import type { ContainerState } from './state.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { NAME_PATTERN, type ContainerId } from '../ids.js';
import type { CreateRequest } from '../options.js';
import type { ImageConfig, MountPoint, NetworkPlan, SandboxEndpointStatus, SpecPlan } from './ports.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import { ensureDir, readJsonIfExists, readdirIfExists, writeJsonAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import type { HealthConfig } from './healthconfig.js';
import { Catalog, type ListedRecord } from './catalog.js';

export interface AttachedStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maxRetries: number;
}

/**
 * Everything a container is, fixed at create (config.ts `planContainer`), after every flag was parsed and
 * checked. Changed afterwards only by `update` (resources, restart policy), `connect`/`disconnect`
 * (networks) and `rename` (the name lives on the record). Nothing parses the user's request again.
 */
export interface ContainerConfig {
  /** the reference as the user gave it, and the image it resolved to */
  image: string;
  imageId: string;
  /** the image's config at create: the container keeps working after its image is removed with -f */
  imageConfig: ImageConfig;
  /** runc's config as planned (bundle planSpec): process, mounts, resources, security */
  spec: SpecPlan;
  /** -v, --mount, --volumes-from and the image's VOLUMEs, planned (volume layer); absent in older records */
  mounts?: MountPoint[];
  /** the network flags, parsed (network plan) */
  network: NetworkPlan;
  /** namespaces shared with other containers (--pid/--ipc/--uts container:X), X resolved to its id */
  joins: { pid?: string; ipc?: string; uts?: string };
  /** Docker's Path and Args: the user's command, without --init's */
  path: string;
  args: string[];
  tty: boolean;
  openStdin: boolean;
  /** -a: the streams an attached run shows (absent in older records: Docker's default) */
  attach?: AttachedStreams;
  hostname: string;
  domainname: string;
  restartPolicy: RestartPolicy;
  autoRemove: boolean;
  stopSignal: string;
  stopTimeout: number;
  labels: Record<string, string>;
  /** --log-opt max-size in bytes: past it the log is rotated (runtime/logrotate.ts) */
  logSizeMax?: number;
  /** --log-opt max-file: how many files the log keeps, the current one included (absent: 1) */
  logMaxFiles?: number;
  /** --runtime, resolved: its name (or the path given) and the executable (absent in older records: runc) */
  runtime?: { name: string; path: string };
  /** the image's ExposedPorts and --expose, as PORT/PROTO (absent in records made before --expose) */
  exposedPorts?: string[];
  /** the healthcheck (flags over the image's HEALTHCHECK), absent when there is none or it is disabled */
  health?: HealthConfig;
  /** its own user namespace (--userns, --uidmap, userns-remap); absent: the host's */
  userns?: UsernsConfig;
  /**
   * The flags in the user's words, which inspect echoes as Docker's HostConfig does (Binds, Tmpfs, Dns...).
   * Display only: every value in it was parsed into the fields above at create.
   */
  request: CreateRequest;
}

/**
 * One container, in containers/<id>/container.json: its config and its state, apart. The record is
 * written in state `creating` before any host object is made, and each step that makes host objects
 * records its state first (state.ts), so a command killed half-way leaves a record the next command can
 * finish or undo (containers/storage's incomplete flag).
 */
export interface ContainerRecord {
  version: 2;
  id: ContainerId;
  name: string;
  created: string;
  config: ContainerConfig;
  state: ContainerState;
  pid: number;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  oomKilled: boolean;
  error: string;
  restartCount: number;
  /** docker's HasBeenManuallyStopped: a stop/kill by the user suspends `always`/`unless-stopped` */
  manuallyStopped: boolean;
  /** set by `restart`: its stop must not remove a --rm container */
  keepOnExit?: boolean;
  /** "pid starttime" of the process that will restart the container after the back-off */
  restarter?: string;
  /**
   * "pid starttime bootid" of the running container's monitor (conmon), recorded at start: a monitor that is
   * gone while the record says running means its exit will never be written (lost.ts). Absent in older
   * records and while not running.
   */
  monitor?: string;
  /** the restart policy's current back-off in ms (Docker's: 100 ms doubling to 1 minute, reset after 10 s up) */
  backoffMs?: number;
  /** what the network gave the running container: published ports and endpoints */
  ports: PortBinding[];
  networks: SandboxEndpointStatus[];
}

function isIdDir(name: string): name is ContainerId {
  return /^[0-9a-f]{64}$/.test(name);
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Paths of one container's files. The bundle is what runc sees; userdata files are bind-mounted in. */
export function containerPaths(layout: StoreLayout, id: string) {
  const dir = path.join(layout.containers, id);
  return {
    dir,
    record: path.join(dir, 'container.json'),
    bundle: path.join(dir, 'bundle'),
    log: path.join(dir, 'ctr.log'),
    hostname: path.join(dir, 'hostname'),
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
    /** pid of an attached `berth run` that will do the exit work itself */
    attached: path.join(dir, 'attached.pid'),
    /** State.Health: written by the checks (health.ts), reset at each start */
    health: path.join(dir, 'health.json'),
    lock: path.join(layout.locks, `ctr-${id}.lock`),
  };
}

/**
 * One JSON file per container plus one file per name (names/<name> holds the id), created with
 * O_EXCL so two concurrent `create --name x` cannot both win.
 */
export class RecordStore {
  private readonly namesDir: string;
  private readonly catalog: Catalog;
  /**
   * `upgrade` turns a record written by an older Berth (no `version`) into today's, which is then saved;
   * without it such a record reads as missing.
   */
  constructor(private readonly layout: StoreLayout, private readonly upgrade?: (old: Record<string, unknown>, imageConfig: ImageConfig) => Promise<ContainerRecord>) {
    this.namesDir = path.join(layout.containers, '.names');
    // Not containerPaths: its ten joins per container are most of a listing's time with the catalog.
    this.catalog = new Catalog(layout.containers, (id) => `${layout.containers}/${id}/container.json`, (id) => this.load(id));
  }

  async save(rec: ContainerRecord): Promise<void> {
    const p = containerPaths(this.layout, rec.id);
    await ensureDir(p.dir, STORE_MODES.owned);
    await writeJsonAtomic(p.record, rec);
  }

  async load(id: string): Promise<ContainerRecord | undefined> {
    const rec = await readJsonIfExists<ContainerRecord | Record<string, unknown>>(containerPaths(this.layout, id).record);
    if (!rec || rec.version === 2) return rec as ContainerRecord | undefined;
    if (!this.upgrade) return undefined;
    // The image config moves into the record: config.json named it as if it were runc's config.
    const legacy = path.join(containerPaths(this.layout, id).dir, 'config.json');
    const stored = await readJsonIfExists<{ imageConfig?: ImageConfig }>(legacy);
    const upgraded = await this.upgrade(rec as Record<string, unknown>, stored?.imageConfig ?? {});
    await this.save(upgraded);
    await fsp.rm(legacy, { force: true });
    return upgraded;
  }

  async ids(): Promise<ContainerId[]> {
    return (await readdirIfExists(this.layout.containers)).filter(isIdDir);
  }

  /** Every container as lists see it (catalog.ts): one readdir, a stat per record, reads only of what changed. */
  async listed(): Promise<ListedRecord[]> {
    const entries = await readdirIfExists(this.layout.containers);
    await this.catalog.sweep(entries);
    return this.catalog.list(entries.filter(isIdDir));
  }

  async all(): Promise<ContainerRecord[]> {
    const recs = await Promise.all((await this.ids()).map((id) => this.load(id)));
    return recs.filter((r): r is ContainerRecord => !!r);
  }

  /** Docker's lookup order: full ID, exact name, then unique ID prefix. */
  async resolve(ref: string): Promise<ContainerRecord> {
    const wanted = ref.startsWith('/') ? ref.slice(1) : ref;
    if (/^[0-9a-f]{64}$/.test(wanted)) {
      const rec = await this.load(wanted);
      if (rec) return rec;
    }
    const byName = await this.idForName(wanted);
    if (byName) {
      const rec = await this.load(byName);
      if (rec) return rec;
    }
    if (/^[0-9a-f]+$/.test(wanted)) {
      const matches = (await this.ids()).filter((id) => id.startsWith(wanted));
      if (matches.length > 1) {
        throw new InvalidArgumentError('container reference', `"${ref}" matches ${matches.length} containers`, 'give more characters of the ID, or the name');
      }
      if (matches.length === 1) {
        const rec = await this.load(matches[0]!);
        if (rec) return rec;
      }
    }
    throw new NotFoundError('container', ref);
  }

  async reserveName(name: string, id: string): Promise<void> {
    if (!NAME_PATTERN.test(name)) {
      throw new InvalidArgumentError('--name', `"${name}" is not a valid container name`, 'names may contain only [a-zA-Z0-9][a-zA-Z0-9_.-]');
    }
    await ensureDir(this.namesDir);
    const file = path.join(this.namesDir, name);
    try {
      await fsp.writeFile(file, id, { flag: 'wx', mode: STORE_MODES.file });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
      // Records are written before names are reserved, so a name whose holder has no record was left by a
      // create or remove that crashed: it is free again.
      if (holder && !(await this.load(holder))) {
        await this.dropStaleName(file, holder, id);
        return this.reserveName(name, id);
      }
      throw new AlreadyExistsError('container', name,
        `the container name "/${name}" is already in use by container "${holder}": remove or rename that container to reuse the name`);
    }
  }

  /**
   * Rename, not delete: only one of several processes finding the same stale name can move it away,
   * so a name freshly taken by another process is never deleted by mistake.
   */
  private async dropStaleName(file: string, holder: string, tag: string): Promise<void> {
    const moved = `${file}.stale-${tag}`;
    if (await fsp.rename(file, moved).then(() => true, () => false)) {
      const movedHolder = (await fsp.readFile(moved, 'utf8').catch(() => '')).trim();
      if (movedHolder !== holder) await fsp.link(moved, file).catch(() => {}); // not the stale one: put it back unless retaken
      await fsp.rm(moved, { force: true });
    }
  }

  async releaseName(name: string, id: string): Promise<void> {
    const file = path.join(this.namesDir, name);
    const holder = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
    if (holder === id) await fsp.rm(file, { force: true });
  }

  async idForName(name: string): Promise<string | undefined> {
    if (!NAME_PATTERN.test(name)) return undefined;
    const id = (await fsp.readFile(path.join(this.namesDir, name), 'utf8').catch(() => '')).trim();
    return id || undefined;
  }

  /**
   * The folder goes in one rename, then is deleted: a kill while deleting leaves a `.tmp-` folder that
   * `sweep` clears, never a folder that lost its record but kept the rest.
   */
  async removeDir(id: string): Promise<void> {
    const trash = path.join(this.layout.containers, `.tmp-rm-${id}`);
    await fsp.rename(containerPaths(this.layout, id).dir, trash).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    failpoint('container.rm.mid-folder');
    await fsp.rm(trash, { recursive: true, force: true });
  }

  /**
   * Folders of removals killed half-way (`removeDir`). Swept by every repair, not only when a stale lock
   * shows a kill: the process that breaks the dead remover's lock next (often the monitor's exit command)
   * takes that evidence away.
   */
  async sweepRemovals(): Promise<void> {
    for (const entry of await readdirIfExists(this.layout.containers)) {
      if (entry.startsWith('.tmp-rm-')) await fsp.rm(path.join(this.layout.containers, entry), { recursive: true, force: true });
    }
  }

  /** Names whose container is gone (a create or remove killed around `reserveName`/`releaseName`). */
  async sweepNames(): Promise<void> {
    for (const name of await readdirIfExists(this.namesDir)) {
      const file = path.join(this.namesDir, name);
      if (name.includes('.stale-')) {
        await fsp.rm(file, { force: true });
        continue;
      }
      const holder = (await fsp.readFile(file, 'utf8').catch(() => '')).trim();
      if (holder && !(await this.load(holder))) await this.dropStaleName(file, holder, `sweep-${process.pid}`);
    }
  }
}
