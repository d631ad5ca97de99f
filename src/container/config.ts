import { constants as fsConstants, promises as fsp } from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { parseBytes } from '../bundle/index.js';
import { isDefaultImageRef } from '../image/busybox.js';
import { NAME_PATTERN, type Digest } from '../ids.js';
import type { CreateRequest } from '../options.js';
import type { ImageConfig, MountPoint } from './ports.js';
import { parseVolumesFrom, planMounts } from '../volume/index.js';
import type { AttachedStreams, ContainerConfig, ContainerRecord, RecordStore } from './record.js';
import { readUserFile, type SpecAssembler } from './spec.js';
import type { ContainerDeps } from './ports.js';
import { ZERO_TIME } from './record.js';
import type { ContainerState } from './state.js';
import { planHealthcheck } from './healthconfig.js';
import { checkUsernsCombination, planUserns } from './userns.js';
import { normalizeSignal, parseRestartPolicy } from './status.js';

/** What planning needs: the layers below, the records (to resolve other containers), the spec assembler. */
export interface PlanContext {
  deps: ContainerDeps;
  records: RecordStore;
  specs: SpecAssembler;
}

/**
 * The one parse of a create request: every flag is turned into the typed ContainerConfig and checked,
 * before any record, name, snapshot or host object exists, so that a refused `create` or `run` leaves no
 * container behind (Docker refuses these at create too). What only a start can tell (a user name the
 * image's passwd lacks, a port another process holds, a joined container not running) fails the start,
 * and the container stays Created, as Docker keeps it.
 */
export async function planContainer(
  ctx: PlanContext, id: string, req: CreateRequest, known?: { imageId: string; imageConfig: ImageConfig },
): Promise<{ config: ContainerConfig; warnings: string[]; layers: Digest[] }> {
  if (!req.image) throw new InvalidArgumentError('image', 'no image given', 'name an image, e.g. "berth run busybox echo hi"');
  if (req.name !== undefined && !NAME_PATTERN.test(req.name)) {
    throw new InvalidArgumentError('--name', `"${req.name}" is not a valid container name`, 'names may contain only [a-zA-Z0-9][a-zA-Z0-9_.-]');
  }
  const restartPolicy = parseRestartPolicy(req.restart);
  if (req.autoRemove && restartPolicy.name !== 'no') {
    throw new InvalidArgumentError('--restart', 'conflicting options: cannot specify both --restart and --rm');
  }
  const stopSignal = req.stopSignal !== undefined ? normalizeSignal(req.stopSignal, '--stop-signal') : undefined;
  if (req.stopTimeout !== undefined && !Number.isInteger(req.stopTimeout)) {
    throw new InvalidArgumentError('--stop-timeout', `"${req.stopTimeout}" is not a whole number of seconds`);
  }
  for (const key of Object.keys(req.labels ?? {})) {
    if (!key || /\s/.test(key)) throw new InvalidArgumentError('--label', `invalid label "${key}=${req.labels![key]}": a label needs a name`, 'write --label NAME=VALUE');
  }
  // Docker reads the files first and --label after, so a flag wins over a file's line.
  const fileLabels: Record<string, string> = {};
  for (const file of req.labelFiles ?? []) Object.assign(fileLabels, parseLabelFile(await readUserFile(file, '--label-file'), file));
  const userLabels = { ...fileLabels, ...(req.labels ?? {}) };
  const expose = (req.network?.expose ?? []).flatMap(parseExpose);
  const cgroupParent = checkCgroupParent(req.cgroupParent);
  const attach = parseAttach(req.attach, !!req.openStdin);
  const runtime = await resolveRuntime(req.runtime, ctx.deps.runtimes);
  const log = parseLogOpts(req.logOpts ?? {});
  const userns = planUserns(req, ctx.deps.userns.default, ctx.deps.host.rootless ? ctx.deps.userns.rootless : undefined);
  checkUsernsCombination(req, userns);

  const image = known ? { id: known.imageId, config: { config: known.imageConfig }, layers: [] as Digest[] } : await resolveImage(ctx, req.image);
  const imageConfig: ImageConfig = image.config.config ?? {};
  const health = planHealthcheck(req, imageConfig);
  const joins = {
    pid: await joinedContainer(ctx.records, req.pid, '--pid'),
    ipc: await joinedContainer(ctx.records, req.ipc, '--ipc'),
    uts: await joinedContainer(ctx.records, req.uts, '--uts'),
  };
  const primary = req.network?.networks?.[0];
  const sharedWith = primary?.startsWith('container:') ? (await resolveOther(ctx.records, primary.slice('container:'.length), '--network')).id : undefined;
  const links = [];
  for (const link of req.network?.links ?? []) {
    const [target = '', alias, ...rest] = link.split(':');
    if (!target || rest.length || alias === '') throw new InvalidArgumentError('--link', `"${link}" is not NAME[:ALIAS]`);
    const other = await resolveOther(ctx.records, target, '--link');
    links.push({ id: other.id, name: other.name, alias: alias ?? other.name });
  }
  const exposedPorts = [...new Set([...Object.keys(imageConfig.ExposedPorts ?? {}), ...expose])];
  const network = await ctx.deps.network.plan(req.network ?? {}, {
    exposedPorts, ...(sharedWith ? { sharedWith } : {}), links,
  });
  const mounts = await planVolumes(ctx, req, imageConfig);
  // Podman's keep-id: the user runs the process, unless --user names another.
  const user = req.user ?? (userns?.keepId ? `${userns.keepId.uid}:${userns.keepId.gid}` : undefined);
  const { plan, warnings } = await ctx.specs.plan(id, { ...req, labels: userLabels, ...(user !== undefined ? { user } : {}) }, imageConfig, cgroupParent, mounts, !!userns);
  if (log?.maxFiles === 1) {
    // conmon replaces the one file (runtime/logrotate.ts): a client that reads it (runtime/attach.ts) and
    // falls behind by two files' worth skips the one between.
    warnings.push('--log-opt max-size with one file: an attached client (run, attach, logs -f) that falls behind by twice max-size skips output; give max-file 2 or more to keep it');
  }
  const args = plan.spec.process?.args ?? [];
  // With --init the process is the init; Path/Args still name the user's command, as Docker shows them.
  const command = req.init ? args.slice(args.indexOf('--') + 1) : args;
  const imageStop = imageConfig.StopSignal ? normalizeSignal(imageConfig.StopSignal, 'the image\'s StopSignal') : undefined;
  return {
    config: {
      image: req.image,
      imageId: image.id,
      imageConfig,
      spec: plan,
      mounts,
      network,
      joins: stripEmpty(joins),
      path: command[0] ?? '',
      args: command.slice(1),
      tty: !!req.tty,
      openStdin: !!req.openStdin,
      attach,
      runtime,
      ...(log ? { logSizeMax: log.maxSize, logMaxFiles: log.maxFiles } : {}),
      hostname: plan.spec.hostname ?? req.hostname ?? id.slice(0, 12),
      domainname: req.domainname ?? '',
      restartPolicy,
      autoRemove: !!req.autoRemove,
      stopSignal: stopSignal ?? imageStop ?? 'SIGTERM',
      stopTimeout: req.stopTimeout ?? 10,
      labels: { ...(imageConfig.Labels ?? {}), ...userLabels },
      exposedPorts,
      ...(health ? { health } : {}),
      ...(userns ? { userns } : {}),
      request: req,
    },
    warnings,
    // The snapshot's lower layers, so that create need not look the image up a second time.
    layers: image.layers,
  };
}

/** A fresh record for a planned config, in state `creating` (written before anything is made). */
export function newRecord(id: string, name: string, config: ContainerConfig): ContainerRecord {
  return {
    version: 2, id: id as ContainerRecord['id'], name, created: new Date().toISOString(), config,
    state: 'creating', pid: 0, startedAt: ZERO_TIME, finishedAt: ZERO_TIME, exitCode: 0, oomKilled: false, error: '',
    restartCount: 0, manuallyStopped: false, ports: [], networks: [],
  };
}

async function resolveImage(ctx: PlanContext, ref: string) {
  try {
    return await ctx.deps.images.resolve(ref);
  } catch (err) {
    // The embedded default image is built on first use, as docker pulls on first use.
    if (err instanceof NotFoundError && isDefaultImageRef(ref)) {
      await ctx.deps.images.ensureDefault();
      return ctx.deps.images.resolve(ref);
    }
    throw err;
  }
}

/** The container's mounts, the volumes-from containers resolved now (they must exist, as in Docker). */
async function planVolumes(ctx: PlanContext, req: CreateRequest, imageConfig: ImageConfig): Promise<MountPoint[]> {
  const volumesFrom = [];
  for (const spec of req.volumesFrom ?? []) {
    const { container, rw } = parseVolumesFrom(spec);
    const other = await resolveOther(ctx.records, container, '--volumes-from');
    volumesFrom.push({ mounts: other.config.mounts ?? [], ...(rw !== undefined ? { rw } : {}) });
  }
  return ctx.deps.volumes.plan(planMounts({
    volumes: req.volumes, mounts: req.mounts, tmpfs: req.tmpfs, volumesFrom, imageVolumes: Object.keys(imageConfig.Volumes ?? {}),
  }));
}

async function joinedContainer(records: RecordStore, mode: string | undefined, field: string): Promise<string | undefined> {
  if (!mode || mode === 'host' || mode === 'private' || mode === 'shareable') return undefined;
  if (!mode.startsWith('container:')) throw new InvalidArgumentError(field, `"${mode}" is not host, private or container:NAME`);
  return (await resolveOther(records, mode.slice('container:'.length), field)).id;
}

/** Another container named by a flag: it must exist now (Docker: "No such container"). */
async function resolveOther(records: RecordStore, ref: string, field: string): Promise<ContainerRecord> {
  if (!ref) throw new InvalidArgumentError(field, 'container: names no container', `write ${field} container:NAME`);
  try {
    return await records.resolve(ref);
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError('container', ref, `${field} names a container that does not exist: create it first`);
    throw err;
  }
}

const MAX_LOG_FILES = 100;

/**
 * --log-opt, as Docker's json-file driver takes max-size and max-file (rotation: runtime/logrotate.ts).
 * Other options are refused by name, as Docker refuses options its driver lacks.
 */
export function parseLogOpts(opts: Record<string, string>): { maxSize: number; maxFiles: number } | undefined {
  for (const key of Object.keys(opts)) {
    if (key !== 'max-size' && key !== 'max-file') throw new InvalidArgumentError('--log-opt', `unknown log opt '${key}' for the k8s-file log driver`, 'Berth takes max-size and max-file');
  }
  const size = opts['max-size'];
  const files = opts['max-file'];
  const max = size === undefined || size === '-1' ? undefined : parseBytes('--log-opt max-size', size);
  if (max !== undefined && max < 1) throw new InvalidArgumentError('--log-opt', 'max-size must be a positive size', 'give a size such as 10m');
  if (files !== undefined) {
    if (!/^\d+$/.test(files) || Number(files) < 1) throw new InvalidArgumentError('--log-opt', `max-file "${files}" is not a whole number of at least 1`);
    if (max === undefined) throw new InvalidArgumentError('--log-opt', 'max-file cannot be set when max-size is not set', 'give max-size too');
    // The rotator shifts the files one by one each time: a bound keeps that (and the disk) reasonable.
    if (Number(files) > MAX_LOG_FILES) throw new InvalidArgumentError('--log-opt', `max-file=${files} is more than ${MAX_LOG_FILES}`, 'keep fewer, larger files (raise max-size)');
  }
  return max === undefined ? undefined : { maxSize: max, maxFiles: files === undefined ? 1 : Number(files) };
}

/**
 * --runtime: a name from the engine config's runtimes (Docker: "unknown or invalid runtime name"), or,
 * beyond Docker, an executable's absolute path. Checked now, so a typo fails the create, not each start.
 */
async function resolveRuntime(given: string | undefined, runtimes: ContainerDeps['runtimes']): Promise<{ name: string; path: string }> {
  const name = given ?? runtimes.default;
  if (!name.startsWith('/')) {
    const file = runtimes.paths[name];
    if (!file) {
      throw new InvalidArgumentError('--runtime', `unknown or invalid runtime name: ${name}`,
        `use ${Object.keys(runtimes.paths).join(', ')}, an absolute path, or add the runtime under "runtimes" in the engine config`);
    }
    return { name, path: file };
  }
  try {
    await fsp.access(name, fsConstants.X_OK);
    if (!(await fsp.stat(name)).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  } catch (err) {
    throw new InvalidArgumentError('--runtime', `${name} is not an executable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'give the absolute path of a runc-compatible runtime');
  }
  return { name, path: name };
}

/**
 * -a: Docker's client takes the stream names in any case; without -a it attaches stdout and stderr, and
 * stdin with -i. Stdin is attached only with -i, since without it the container's stdin is not open.
 */
export function parseAttach(list: readonly string[] | undefined, openStdin: boolean): AttachedStreams {
  if (list === undefined) return { stdin: openStdin, stdout: true, stderr: true };
  const names = list.map((s) => s.toLowerCase());
  const bad = names.find((n) => n !== 'stdin' && n !== 'stdout' && n !== 'stderr');
  if (bad !== undefined) throw new InvalidArgumentError('--attach', `"${bad}": valid streams are STDIN, STDOUT and STDERR`);
  return { stdin: openStdin && names.includes('stdin'), stdout: names.includes('stdout'), stderr: names.includes('stderr') };
}

/**
 * Docker's --label-file format: one label a line, NAME=VALUE or NAME (empty value); leading blanks, blank
 * lines and # comments are skipped; a name holding blanks is refused with the line's number.
 */
export function parseLabelFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of text.replace(/^\uFEFF/, '').split('\n').entries()) {
    const line = raw.replace(/\r$/, '').trimStart();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (!name) throw new InvalidArgumentError('--label-file', `${file} line ${i + 1}: no label name in "${line}"`, 'write one NAME=VALUE a line');
    if (/\s/.test(name)) throw new InvalidArgumentError('--label-file', `${file} line ${i + 1}: label name "${name}" contains whitespace`, 'write one NAME=VALUE a line');
    out[name] = eq < 0 ? '' : line.slice(eq + 1);
  }
  return out;
}

const EXPOSE = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/;

/** --expose PORT[-END][/PROTO], expanded to one PORT/PROTO each, as Docker lists them in ExposedPorts. */
export function parseExpose(text: string): string[] {
  const m = EXPOSE.exec(text.toLowerCase());
  const start = Number(m?.[1]);
  const end = m?.[2] !== undefined ? Number(m[2]) : start;
  if (!m || start < 1 || end > 65535 || end < start) {
    throw new InvalidArgumentError('--expose', `invalid range format for --expose: ${text}`, 'give PORT, PORT/PROTO or START-END/PROTO with ports from 1 to 65535 and PROTO tcp, udp or sctp');
  }
  return Array.from({ length: end - start + 1 }, (_, k) => `${start + k}/${m[3] ?? 'tcp'}`);
}

/**
 * --cgroup-parent: Docker (cgroupfs driver) makes the container's cgroup at PARENT/<id>. A relative parent
 * is taken from the root, as it is for a dockerd in the root cgroup; '..' could leave the hierarchy, and
 * ':' is the systemd driver's syntax, which Berth does not drive.
 */
function checkCgroupParent(parent: string | undefined): string | undefined {
  if (parent === undefined) return undefined;
  const parts = parent.split('/').filter(Boolean);
  if (!parts.length || parts.some((p) => p === '..' || p === '.' || /[\s:\0]/.test(p))) {
    throw new InvalidArgumentError('--cgroup-parent', `"${parent}" is not a cgroup path`, 'give a path such as /mygroup or mygroup/sub, without "..", ":" or blanks');
  }
  return '/' + parts.join('/');
}

function stripEmpty<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * A record written by Berth before records had a version: the request is planned now, as a create would,
 * over the image config kept beside it (containers/<id>/config.json, which the caller removes after).
 */
export async function upgradeRecord(ctx: PlanContext, old: Record<string, unknown>, imageConfig: ImageConfig): Promise<ContainerRecord> {
  const v1 = old as unknown as V1Record;
  const known = { imageId: v1.imageId, imageConfig };
  const state: ContainerState = v1.phase === 'creating' || v1.state === 'configured' ? 'creating'
    : v1.phase === 'starting' ? 'starting'
    : v1.phase === 'removing' || v1.state === 'removing' ? 'removing'
    : v1.state === 'stopping' || v1.state === 'dead' ? 'exited'
    : v1.state as ContainerState;
  let config: ContainerConfig;
  let error = v1.error ?? '';
  try {
    config = (await planContainer(ctx, v1.id, v1.request, known)).config;
  } catch (err) {
    // Its options no longer check out (a network or a joined container is gone): keep it visible and
    // removable, with only its command, and say why.
    config = (await planContainer(ctx, v1.id, { image: v1.image, command: [v1.path, ...v1.args].filter(Boolean), network: { networks: ['none'] } }, known)).config;
    config.image = v1.image;
    error = `made by an older Berth; its options could not be carried over (${(err as Error).message}): create it again`;
  }
  return {
    version: 2, id: v1.id as ContainerRecord['id'], name: v1.name, created: v1.created, config,
    state, pid: v1.pid, startedAt: v1.startedAt, finishedAt: v1.finishedAt, exitCode: v1.exitCode, oomKilled: v1.oomKilled, error,
    restartCount: v1.restartCount, manuallyStopped: v1.manuallyStopped,
    ...(v1.keepOnExit ? { keepOnExit: true } : {}), ...(v1.restarter ? { restarter: v1.restarter } : {}),
    ports: v1.ports ?? [], networks: v1.networks ?? [],
  };
}

interface V1Record {
  id: string; name: string; created: string; image: string; imageId: string; request: CreateRequest;
  path: string; args: string[]; state: string; phase?: string; pid: number; startedAt: string; finishedAt: string;
  exitCode: number; oomKilled: boolean; error?: string; restartCount: number; manuallyStopped: boolean;
  keepOnExit?: boolean; restarter?: string; ports?: ContainerRecord['ports']; networks?: ContainerRecord['networks'];
}
