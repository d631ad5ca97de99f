import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ContainerState, PortBinding } from '../types.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { NAME_PATTERN, type ContainerId } from '../ids.js';
import type { CreateRequest } from '../options.js';
import type { ImageConfig, SandboxEndpointStatus } from './ports.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import { ensureDir, readJsonIfExists, readdirIfExists, writeJsonAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maxRetries: number;
}

/**
 * Everything Berth knows about one container, in containers/<id>/container.json. Written before any
 * host object is made (`phase` says what was under way), so a command killed half-way leaves a
 * record the next command can finish or undo (containers/storage's incomplete flag).
 */
export interface ContainerRecord {
  id: ContainerId;
  name: string;
  created: string;
  /** the reference as the user gave it, and what it resolved to */
  image: string;
  imageId: string;
  request: CreateRequest;
  /** the process the container runs, after Entrypoint/Cmd resolution */
  path: string;
  args: string[];
  tty: boolean;
  openStdin: boolean;
  state: ContainerState;
  /** an operation in progress; set before host objects are touched, cleared after */
  phase?: 'creating' | 'starting' | 'stopping' | 'removing';
  pid: number;
  startedAt: string;
  finishedAt: string;
  exitCode: number;
  oomKilled: boolean;
  error: string;
  restartPolicy: RestartPolicy;
  restartCount: number;
  /** docker's HasBeenManuallyStopped: a stop/kill by the user suspends `always`/`unless-stopped` */
  manuallyStopped: boolean;
  /** set by `restart`: its stop must not remove a --rm container */
  keepOnExit?: boolean;
  /** "pid starttime" of the process that will restart the container after the back-off */
  restarter?: string;
  autoRemove: boolean;
  stopSignal: string;
  stopTimeout: number;
  labels: Record<string, string>;
  ports: PortBinding[];
  networks: SandboxEndpointStatus[];
  networkMode: string;
  hostname: string;
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
    lock: path.join(layout.locks, `ctr-${id}.lock`),
  };
}

/**
 * One JSON file per container plus one file per name (names/<name> holds the id), created with
 * O_EXCL so two concurrent `create --name x` cannot both win.
 */
export class RecordStore {
  private readonly namesDir: string;
  constructor(private readonly layout: StoreLayout) {
    this.namesDir = path.join(layout.containers, '.names');
  }

  async save(rec: ContainerRecord): Promise<void> {
    const p = containerPaths(this.layout, rec.id);
    await ensureDir(p.dir, STORE_MODES.owned);
    await writeJsonAtomic(p.record, rec);
  }

  async load(id: string): Promise<ContainerRecord | undefined> {
    return readJsonIfExists<ContainerRecord>(containerPaths(this.layout, id).record);
  }

  async ids(): Promise<ContainerId[]> {
    return (await readdirIfExists(this.layout.containers)).filter((n) => /^[0-9a-f]{64}$/.test(n)) as ContainerId[];
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

/**
 * The image's config as it was at create, kept beside the record: the spec is rebuilt from it at every
 * start, so a container keeps working after its image is removed with -f (as Docker's do).
 */
export async function writeImageConfig(layout: StoreLayout, id: string, imageConfig: ImageConfig): Promise<void> {
  await writeJsonAtomic(path.join(containerPaths(layout, id).dir, 'config.json'), { imageConfig });
}

export async function readImageConfig(layout: StoreLayout, id: string): Promise<ImageConfig> {
  const stored = await readJsonIfExists<{ imageConfig: ImageConfig }>(path.join(containerPaths(layout, id).dir, 'config.json'));
  if (!stored) throw new NotFoundError('container', id, 'its folder is incomplete: remove it with "berth rm -f"');
  return stored.imageConfig;
}
