import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { NAME_PATTERN } from '../ids.js';
import type { CreateRequest } from '../options.js';
import type { ImageConfig } from './ports.js';
import type { ContainerConfig, ContainerRecord, RecordStore } from './record.js';
import type { SpecAssembler } from './spec.js';
import type { ContainerDeps } from './ports.js';
import { ZERO_TIME } from './record.js';
import type { ContainerState } from './state.js';
import { planHealthcheck } from './healthconfig.js';
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
): Promise<{ config: ContainerConfig; warnings: string[] }> {
  if (!req.image) throw new InvalidArgumentError('image', 'no image given', 'name an image, e.g. "berth run busybox echo hi"');
  if (req.name !== undefined && !NAME_PATTERN.test(req.name)) {
    throw new InvalidArgumentError('--name', `"${req.name}" is not a valid container name`, 'names may contain only [a-zA-Z0-9][a-zA-Z0-9_.-]');
  }
  refuseUnbuilt(req);
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

  const image = known ? { id: known.imageId, config: { config: known.imageConfig } } : await resolveImage(ctx, req.image);
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
  const network = await ctx.deps.network.plan(req.network ?? {}, {
    exposedPorts: Object.keys(imageConfig.ExposedPorts ?? {}), ...(sharedWith ? { sharedWith } : {}), links,
  });
  const { plan, warnings } = await ctx.specs.plan(id, req, imageConfig);
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
      network,
      joins: stripEmpty(joins),
      path: command[0] ?? '',
      args: command.slice(1),
      tty: !!req.tty,
      openStdin: !!req.openStdin,
      hostname: plan.spec.hostname ?? req.hostname ?? id.slice(0, 12),
      domainname: req.domainname ?? '',
      restartPolicy,
      autoRemove: !!req.autoRemove,
      stopSignal: stopSignal ?? imageStop ?? 'SIGTERM',
      stopTimeout: req.stopTimeout ?? 10,
      labels: { ...(imageConfig.Labels ?? {}), ...(req.labels ?? {}) },
      ...(health ? { health } : {}),
      request: req,
    },
    warnings,
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

const DEFAULT_IMAGE = /^(localhost\/)?busybox(:latest)?$/;

async function resolveImage(ctx: PlanContext, ref: string) {
  try {
    return await ctx.deps.images.resolve(ref);
  } catch (err) {
    // The embedded default image is built on first use, as docker pulls on first use.
    if (err instanceof NotFoundError && DEFAULT_IMAGE.test(ref)) {
      await ctx.deps.images.ensureDefault();
      return ctx.deps.images.resolve(ref);
    }
    throw err;
  }
}

/**
 * Flags the volume layer will implement: refused by name until then, since an accepted flag that does
 * nothing is never allowed.
 */
function refuseUnbuilt(req: CreateRequest): void {
  if (req.volumesFrom?.length) {
    throw new InvalidArgumentError('--volumes-from', 'is not supported yet: Berth has no volumes yet', 'bind-mount the same host folder into both containers with -v /host/path:/path');
  }
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
