import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError, runTeardown } from '../errors.js';
import type { Mount } from '../../runtime-spec/types.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import type { Readable, Writable } from 'node:stream';
import { createReadStream } from 'node:fs';
import { ensureDir, ownedTempName, readJsonIfExists, readdirIfExists, removeDeadTemps, writeJsonAtomic, writeStreamAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import { extractNoFollow, pumpTar, spawnTar } from '../util/tar.js';
import { withLock } from '../util/lock.js';
import { ensureSpreadDir } from '../util/spread.js';
import { parsePruneFilter, prunable } from '../util/prune-filter.js';
import { copyAside, copySource, copyTree, isEmptyDir } from './copyup.js';
import { localDriver } from './drivers/local.js';
import { checkVolumeName } from './parse.js';
import type { MountPoint, VolumeCreateRequest, VolumeDetails, VolumeDriver, VolumeInfo, VolumeRecord } from './types.js';

/** Docker's label on anonymous volumes (23+): `volume prune` without -a removes only these. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export interface VolumeManagerOptions {
  /** The name of a container by id, or undefined when it no longer exists (the container layer's records). */
  containerName(id: string): Promise<string | undefined>;
}

/**
 * Volumes: `ROOT/volumes/<name>/` holds `volume.json` (the record), `_data` (local's data) and `refs/<id>`
 * (one empty file per container whose config names the volume, from its create to its removal: what
 * makes a volume "in use"). Which containers run with it is volatile: `RUNROOT/vol/<name>/<id>`, written
 * before the driver mounts anything, so the first running user mounts and the last one unmounts, and
 * a command killed in between leaves a marker that the container's teardown clears. One lock per
 * volume (`locks/vol-<name>.lock`), taken after the container's (container → volume).
 */
export class VolumeManager {
  private readonly drivers = new Map<string, VolumeDriver>([[localDriver.name, localDriver]]);
  private readonly users: string;

  constructor(private readonly layout: StoreLayout, private readonly opts: VolumeManagerOptions) {
    this.users = path.join(layout.runroot, 'vol');
  }

  /** Adds a driver for this engine (in this process); `local` cannot be replaced. */
  registerDriver(driver: VolumeDriver): void {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(driver.name)) throw new InvalidArgumentError('driver', `"${driver.name}" is not a driver name`);
    if (this.drivers.has(driver.name)) throw new AlreadyExistsError('volume', `driver ${driver.name}`, 'register each driver once');
    this.drivers.set(driver.name, driver);
  }

  // ------------------------------------------------------------------ volume objects

  async create(req: VolumeCreateRequest = {}): Promise<VolumeRecord> {
    const name = req.name ?? randomBytes(32).toString('hex');
    checkVolumeName(name);
    const driver = this.driver(req.driver ?? 'local');
    driver.checkOptions(req.options ?? {});
    for (const key of Object.keys(req.labels ?? {})) if (!key) throw new InvalidArgumentError('--label', 'a label needs a name');
    return withLock(this.lockOf(name), () => this.createLocked(name, driver, req.options ?? {}, req.labels ?? {}, false));
  }

  async inspect(name: string): Promise<VolumeDetails> {
    const rec = await this.load(name);
    if (!rec) throw new NotFoundError('volume', name);
    return this.details(rec);
  }

  /** `filters`: dangling=true|false, name=SUBSTRING, label=KEY[=VALUE], driver=NAME, as Docker's. */
  async list(opts: { filters?: string[] } = {}): Promise<VolumeDetails[]> {
    const match = parseListFilters(opts.filters ?? []);
    const out: VolumeDetails[] = [];
    for (const name of (await readdirIfExists(this.layout.volumes)).sort()) {
      if (name.startsWith('.')) continue;
      const rec = await this.load(name);
      if (!rec) continue;
      const details = await this.details(rec);
      if (match(details)) out.push(details);
    }
    return out;
  }

  /** Refused while a container uses it (named), as Docker; `force` only makes a missing volume no error. */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await withLock(this.lockOf(name), async () => {
      const rec = await this.load(name);
      if (!rec) {
        if (opts.force) return;
        throw new NotFoundError('volume', name);
      }
      const users = await this.liveRefs(name);
      if (users.length) {
        const names = await Promise.all(users.map(async (id) => (await this.opts.containerName(id)) ?? id.slice(0, 12)));
        throw new BadStateError(`remove ${name}: volume is in use by container ${names.join(', ')}`, `remove ${names.length > 1 ? 'those containers' : 'that container'} first ("berth rm ${names[0]}")`);
      }
      await this.removeLocked(rec);
    });
  }

  /** Docker 23+: unused anonymous volumes; with `all`, every unused volume. */
  async prune(opts: { all?: boolean; filters?: string[] } = {}): Promise<{ deleted: string[] }> {
    const filter = parsePruneFilter(opts.filters ?? []);
    const deleted: string[] = [];
    for (const { record } of await this.list()) {
      if (!opts.all && !record.anonymous) continue;
      if (!prunable(filter, record.createdAt, record.labels)) continue;
      const gone = await withLock(this.lockOf(record.name), async () => {
        const rec = await this.load(record.name);
        if (!rec || (await this.liveRefs(rec.name)).length) return false;
        await this.removeLocked(rec);
        return true;
      });
      if (gone) deleted.push(record.name);
    }
    return { deleted };
  }

  // ------------------------------------------------------------------ data in and out (podman's volume export/import)

  /** The volume's content as a tar (entries `./...`, numeric owners, xattrs), into a stream or a file. */
  async export(name: string, output: string | Writable): Promise<void> {
    const rec = await this.load(name);
    if (!rec) throw new NotFoundError('volume', name);
    const dir = this.contentDir(rec, 'export');
    const reader = spawnTar(['-c', '-f', '-', '--numeric-owner', '--xattrs', '--xattrs-include=*', '--sparse', '-C', dir, '.'], 'ignore');
    if (typeof output !== 'string') {
      await pumpTar(reader.child.stdout!, output, [reader]);
      return;
    }
    await writeStreamAtomic(output, reader.child.stdout!, 0o644, reader.done);
  }

  /**
   * Fills an empty volume from a tar. All or nothing: the tar is extracted into a temp folder beside
   * `_data` (links never followed, `..` refused) and renamed over the empty `_data` in one step, under
   * the volume's lock; a command killed before the rename leaves the volume empty and a temp folder
   * that the next command's repair removes.
   */
  async import(name: string, input: string | Readable): Promise<void> {
    const src = typeof input === 'string' ? await openInput(input) : input;
    await withLock(this.lockOf(name), async () => {
      const rec = await this.load(name);
      if (!rec) throw new NotFoundError('volume', name, 'create it first with "berth volume create"');
      const target = this.contentDir(rec, 'import');
      const running = await readdirIfExists(path.join(this.users, name));
      if (running.length) {
        const names = await Promise.all(running.map(async (id) => (await this.opts.containerName(id)) ?? id.slice(0, 12)));
        throw new BadStateError(`volume ${name} is in use by running container ${names.join(', ')}`, 'stop the container first');
      }
      if (!(await isEmptyDir(target))) {
        throw new BadStateError(`volume ${name} is not empty`, 'import into a new volume ("berth volume create"), or remove this one and create it again');
      }
      const tmp = path.join(this.dirOf(name), ownedTempName('.tmp-import'));
      await fsp.mkdir(tmp, { mode: 0o755 });
      try {
        const writer = extractNoFollow(tmp, ['--numeric-owner', '--same-owner', '--same-permissions', '--xattrs', '--xattrs-include=*']);
        await pumpTar(src, writer, [writer]);
        failpoint('volume.import.before-rename');
        // rename(2) replaces an empty folder in one step
        await fsp.rename(tmp, target);
      } finally {
        await fsp.rm(tmp, { recursive: true, force: true });
      }
    });
  }

  /** Where a volume's files are on the host, for export and import: local volumes without a device only. */
  private contentDir(rec: VolumeRecord, verb: string): string {
    if (rec.driver !== 'local' || rec.options.type !== undefined) {
      throw new InvalidArgumentError('volume', `volume ${rec.name} keeps its data on a ${rec.driver === 'local' ? `${rec.options.type} device` : `${rec.driver} driver`}, which ${verb} cannot reach`,
        `${verb} through a container instead: berth run --rm -v ${rec.name}:/v busybox tar ...`);
    }
    return localDriver.mountpoint(this.info(rec));
  }

  /** Removes what killed commands left: temp folders of volumes being made, removed or filled. */
  async repair(): Promise<void> {
    await removeDeadTemps(this.layout.volumes);
    for (const name of await readdirIfExists(this.layout.volumes)) {
      if (!name.startsWith('.')) await removeDeadTemps(path.join(this.layout.volumes, name));
    }
  }

  // ------------------------------------------------------------------ containers' mounts

  /**
   * At a container's plan (nothing made): anonymous volumes get their names, volumes their driver
   * checked and their mountpoint as Source, bind sources that must exist are checked.
   */
  async plan(mounts: readonly MountPoint[]): Promise<MountPoint[]> {
    const out: MountPoint[] = [];
    for (const m0 of mounts) {
      const m = { ...m0 };
      if (m.type === 'volume') {
        m.name ??= randomBytes(32).toString('hex');
        const existing = await this.load(m.name);
        m.driver = existing?.driver ?? m.create?.driver ?? 'local';
        const driver = this.driver(m.driver);
        if (!existing) driver.checkOptions(m.create?.options ?? {});
        m.source = driver.mountpoint(this.info(existing ?? { name: m.name, driver: m.driver, options: m.create?.options ?? {}, labels: {} }));
      } else if (m.type === 'bind' && !m.createSource) {
        const st = await fsp.stat(m.source).catch(() => undefined);
        if (!st) throw new InvalidArgumentError('--mount', `bind source path does not exist: ${m.source}`, 'create it first (unlike -v, --mount type=bind does not create it)');
      }
      out.push(m);
    }
    return out;
  }

  /** At create: named volumes made on first use, anonymous ones made; each referenced by the container. */
  async attach(ctrId: string, mounts: readonly MountPoint[]): Promise<void> {
    for (const m of mounts) {
      if (m.type !== 'volume') continue;
      await withLock(this.lockOf(m.name!), async () => {
        if (!(await this.load(m.name!))) {
          const labels = { ...(m.create?.labels ?? {}), ...(m.anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
          await this.createLocked(m.name!, this.driver(m.driver ?? 'local'), m.create?.options ?? {}, labels, !!m.anonymous);
        }
        const refs = path.join(this.dirOf(m.name!), 'refs');
        await ensureDir(refs);
        await fsp.writeFile(path.join(refs, ctrId), '', { mode: STORE_MODES.file });
      });
    }
  }

  /**
   * At the container's removal: its references go; with `removeAnonymous` (rm -v, --rm) its anonymous
   * volumes that no other container uses go too. Named volumes are never removed here.
   */
  async detach(ctrId: string, mounts: readonly MountPoint[], opts: { removeAnonymous?: boolean } = {}): Promise<void> {
    const names = [...new Set(mounts.filter((m) => m.type === 'volume').map((m) => m.name!))];
    await runTeardown(names.map((name) => () => withLock(this.lockOf(name), async () => {
      await fsp.rm(path.join(this.dirOf(name), 'refs', ctrId), { force: true });
      const rec = await this.load(name);
      if (!rec || !rec.anonymous || !opts.removeAnonymous) return;
      if ((await this.liveRefs(name)).filter((id) => id !== ctrId).length) return;
      await this.removeLocked(rec);
    })));
  }

  /**
   * At start, before runc create: every volume mounted by its driver (the first running user mounts),
   * a missing -v bind source made, and a new, empty volume filled with the image's content at its
   * destination (copy-up). Returns each mount's host path by destination.
   */
  async mount(ctrId: string, mounts: readonly MountPoint[], rootfs: string): Promise<Map<string, string>> {
    const sources = new Map<string, string>();
    for (const m of mounts) {
      if (m.type === 'bind') {
        // Docker makes a missing -v source as a folder; an existing one (a file too) is bound as it is.
        if (m.createSource) {
          await fsp.mkdir(m.source, { recursive: true, mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'EEXIST') throw err;
          });
        }
        sources.set(m.destination, m.source);
      } else if (m.type === 'volume') {
        sources.set(m.destination, await withLock(this.lockOf(m.name!), () => this.mountLocked(ctrId, m, rootfs)));
      }
    }
    return sources;
  }

  /** At the end of a run (and of a start that failed): the container's markers go; the last user unmounts. */
  async unmount(ctrId: string): Promise<void> {
    const steps = (await readdirIfExists(this.users)).map((name) => async () => {
      const marker = path.join(this.users, name, ctrId);
      if (!(await fsp.access(marker).then(() => true, () => false))) return;
      await withLock(this.lockOf(name), async () => {
        await fsp.rm(marker, { force: true });
        if ((await readdirIfExists(path.join(this.users, name))).length) return;
        const rec = await this.load(name);
        const driver = rec && this.drivers.get(rec.driver);
        if (rec && driver) await driver.unmount(this.info(rec));
        await fsp.rmdir(path.join(this.users, name)).catch(() => {});
      });
    });
    await runTeardown(steps);
  }

  /**
   * Copy-up at create (Docker populates at create too): so that a container that is only created, such
   * as a data-packed volume container, has filled its volumes for others' --volumes-from.
   */
  async populate(ctrId: string, mounts: readonly MountPoint[], rootfs: string): Promise<void> {
    const filled = [];
    for (const m of mounts) if (m.type === 'volume' && m.copyUp && (await copySource(rootfs, m.destination))) filled.push(m);
    if (!filled.length) return;
    try {
      await this.mount(ctrId, filled, rootfs);
    } finally {
      await this.unmount(ctrId);
    }
  }

  // ------------------------------------------------------------------ private

  private async mountLocked(ctrId: string, m: MountPoint, rootfs: string): Promise<string> {
    const rec = await this.load(m.name!);
    if (!rec) throw new BadStateError(`volume ${m.name} of this container was removed`, 'create the container again');
    const driver = this.drivers.get(rec.driver);
    if (!driver) throw new BadStateError(`volume ${rec.name} uses driver "${rec.driver}", which is not registered in this process`, 'register the driver with engine.volumes.registerDriver before starting the container');
    const info = this.info(rec);
    await ensureDir(path.join(this.users, rec.name));
    await fsp.writeFile(path.join(this.users, rec.name, ctrId), '', { mode: STORE_MODES.file });
    await driver.mount(info);
    const target = driver.mountpoint(info);
    if (m.copyUp) await this.copyUp(rec, driver, target, rootfs, m.destination);
    return target;
  }

  private async copyUp(rec: VolumeRecord, driver: VolumeDriver, target: string, rootfs: string, dest: string): Promise<void> {
    const dir = this.dirOf(rec.name);
    await removeDeadTemps(dir);
    if (rec.copying) {
      // A copy into this mounted volume was killed: what is there is partial, unless the mount is fresh.
      if (!(await isEmptyDir(target))) {
        if (!driver.volatile?.(this.info(rec))) {
          throw new BadStateError(`volume ${rec.name} holds a partial copy of the image's ${dest}: a copy into it was interrupted`,
            `empty the volume's folder (${target}) and start again, or remove the volume`);
        }
        return;
      }
    } else if (!(await isEmptyDir(target))) {
      return;
    }
    const src = await copySource(rootfs, dest);
    if (!src) return;
    if (rec.driver === 'local' && rec.options.type === undefined) {
      await copyAside(src, path.join(dir, ownedTempName('.tmp-copy')), target);
      return;
    }
    rec.copying = true;
    await this.save(rec);
    await copyTree(src, target);
    delete rec.copying;
    await this.save(rec);
  }

  /** The caller holds the volume's lock. The folder is made aside and renamed into place: all or nothing. */
  private async createLocked(name: string, driver: VolumeDriver, options: Record<string, string>, labels: Record<string, string>, anonymous: boolean): Promise<VolumeRecord> {
    const existing = await this.load(name);
    if (existing) {
      if (existing.driver !== driver.name) throw new AlreadyExistsError('volume', name, `it uses driver ${existing.driver}: pick another name`);
      return existing;
    }
    await ensureSpreadDir(this.layout.volumes, STORE_MODES.traverse);
    const rec: VolumeRecord = { version: 1, name, driver: driver.name, labels, options, createdAt: new Date().toISOString(), anonymous };
    const tmp = path.join(this.layout.volumes, ownedTempName(`.tmp-new-${name}`));
    await fsp.mkdir(tmp, { mode: STORE_MODES.traverse });
    try {
      await writeJsonAtomic(path.join(tmp, 'volume.json'), rec);
      await driver.create(this.info(rec, tmp));
      await fsp.rename(tmp, this.dirOf(name));
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return rec;
  }

  /** The caller holds the lock. Moved aside first, so a kill mid-delete never leaves a half volume listed. */
  private async removeLocked(rec: VolumeRecord): Promise<void> {
    const driver = this.drivers.get(rec.driver);
    if (!driver) throw new BadStateError(`volume ${rec.name} uses driver "${rec.driver}", which is not registered in this process`, 'register the driver, then remove the volume');
    await driver.unmount(this.info(rec));
    const trash = path.join(this.layout.volumes, ownedTempName(`.tmp-rm-${rec.name}`));
    await fsp.rename(this.dirOf(rec.name), trash);
    await driver.remove(this.info(rec, trash));
    await fsp.rm(trash, { recursive: true, force: true });
    await fsp.rm(path.join(this.users, rec.name), { recursive: true, force: true });
  }

  /** Containers referencing the volume that still exist; references of containers gone are dropped. */
  private async liveRefs(name: string): Promise<string[]> {
    const refs = path.join(this.dirOf(name), 'refs');
    const live: string[] = [];
    for (const id of await readdirIfExists(refs)) {
      if (await this.opts.containerName(id)) live.push(id);
      else await fsp.rm(path.join(refs, id), { force: true });
    }
    return live;
  }

  private async details(rec: VolumeRecord): Promise<VolumeDetails> {
    const driver = this.drivers.get(rec.driver) ?? localDriver;
    return { record: rec, mountpoint: driver.mountpoint(this.info(rec)), users: await this.liveRefs(rec.name) };
  }

  private driver(name: string): VolumeDriver {
    const d = this.drivers.get(name);
    if (!d) throw new InvalidArgumentError('--driver', `unknown volume driver "${name}"`, `use one of ${[...this.drivers.keys()].join(', ')}, or register it with engine.volumes.registerDriver`);
    return d;
  }

  private info(rec: Pick<VolumeRecord, 'name' | 'driver' | 'options' | 'labels'>, dir = this.dirOf(rec.name)): VolumeInfo {
    return { name: rec.name, driver: rec.driver, options: rec.options, labels: rec.labels, dir };
  }

  private dirOf(name: string): string {
    return path.join(this.layout.volumes, name);
  }

  private lockOf(name: string): string {
    return path.join(this.layout.locks, `vol-${name}.lock`);
  }

  private async load(name: string): Promise<VolumeRecord | undefined> {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(name)) return undefined;
    return readJsonIfExists<VolumeRecord>(path.join(this.dirOf(name), 'volume.json'));
  }

  private async save(rec: VolumeRecord): Promise<void> {
    await writeJsonAtomic(path.join(this.dirOf(rec.name), 'volume.json'), rec);
  }
}

function parseListFilters(filters: readonly string[]): (v: VolumeDetails) => boolean {
  // Docker's rule: values of one key are alternatives (name=a and name=b: either), labels must all match.
  const tests = new Map<string, ((v: VolumeDetails) => boolean)[]>();
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    const add = (t: (v: VolumeDetails) => boolean) => {
      const group = key === 'label' ? f : key;
      tests.set(group, [...(tests.get(group) ?? []), t]);
    };
    switch (key) {
      case 'dangling':
        if (!['true', 'false', '1', '0'].includes(value)) throw new InvalidArgumentError('--filter', `invalid filter 'dangling=${value}'`, 'use dangling=true or dangling=false');
        add((v) => (v.users.length === 0) === (value === 'true' || value === '1'));
        break;
      case 'name': add((v) => v.record.name.includes(value)); break;
      case 'driver': add((v) => v.record.driver === value); break;
      case 'label': {
        const i = value.indexOf('=');
        const k = i < 0 ? value : value.slice(0, i);
        add((v) => k in v.record.labels && (i < 0 || v.record.labels[k] === value.slice(i + 1)));
        break;
      }
      default:
        throw new InvalidArgumentError('--filter', `invalid filter '${key}'`, 'volume ls takes dangling=, name=, label= and driver=');
    }
  }
  return (v) => [...tests.values()].every((alternatives) => alternatives.some((t) => t(v)));
}

/** The OCI mounts of a container's planned mounts (volumes and binds are bind mounts of host paths). */
export function ociMounts(mounts: readonly MountPoint[]): Mount[] {
  return mounts.map((m): Mount => {
    if (m.type === 'tmpfs') return { destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'nodev', ...(m.tmpfsOptions ?? [])] };
    return {
      destination: m.destination, type: 'bind', source: m.source,
      options: [m.nonRecursive ? 'bind' : 'rbind', m.rw ? 'rw' : 'ro', m.propagation || 'rprivate'],
    };
  });
}

/** A host tar file, checked readable before any lock is taken. */
async function openInput(file: string): Promise<Readable> {
  await fsp.access(file).catch((err: unknown) => {
    throw new InvalidArgumentError('input', `cannot read ${file}: ${(err as Error).message}`, 'give the path of a tar file, or - for stdin');
  });
  return createReadStream(file);
}
