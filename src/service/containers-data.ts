/**
 * The container endpoints that read or change what is in a container rather than its life: logs, top,
 * stats, rename, update, changes, export, and the archive (docker cp). All of it is the Engine's; this
 * file only turns Docker's query and body shapes into Engine calls and the answers back into Docker's.
 */
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError, RuntimeError } from '../errors.js';
import type { ContainerStats, PathStat, ResourceRequest } from '../types.js';
import { ApiError } from './errors.js';
import { boolParam, jsonLines, readJson, sendJson, sendStatus } from './http.js';
import type { Call, Router } from './router.js';
import { frameHeader } from './streams.js';
import { compareVersions } from './versions.js';

export function registerContainerData(r: Router): void {
  r.add('GET', '/containers/{id}/logs', logs);
  r.add('GET', '/containers/{id}/top', top);
  r.add('GET', '/containers/{id}/stats', stats);
  r.add('POST', '/containers/{id}/rename', rename);
  r.add('POST', '/containers/{id}/update', update);
  r.add('GET', '/containers/{id}/changes', changes);
  r.add('GET', '/containers/{id}/export', exportRootfs);
  r.add('HEAD', '/containers/{id}/archive', statArchive);
  r.add('GET', '/containers/{id}/archive', getArchive);
  r.add('PUT', '/containers/{id}/archive', putArchive);
}

function resOf(call: Call): ServerResponse {
  if (!call.res) throw new ApiError(400, `${call.req.method} ${call.req.url} cannot be upgraded to a raw stream`);
  return call.res;
}

// ------------------------------------------------------------------ logs

/** Docker's `tail`: all, or a count (negative counts as all). */
function tailParam(q: URLSearchParams): number | 'all' {
  const v = q.get('tail');
  if (v === null || v === '' || v === 'all') return 'all';
  if (!/^-?\d+$/.test(v)) throw new ApiError(400, `invalid value for tail: "${v}" is not a number or "all"`);
  return Number(v) < 0 ? 'all' : Number(v);
}

/** Docker's since/until: unix seconds (the CLI sends `SECONDS.NANOS`); 0 means no bound. */
function timeParam(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null || v === '' || /^0+(\.0+)?$/.test(v)) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new ApiError(400, `invalid value for ${name}: "${v}" is not a unix timestamp`);
  return v;
}

/** Waits until `res` can take more, or is gone: a follow must not buffer without bound for a slow client. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function logs(call: Call): Promise<void> {
  const res = resOf(call);
  const q = call.query;
  const stdout = boolParam(q, 'stdout');
  const stderr = boolParam(q, 'stderr');
  if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream');
  const opts = {
    follow: boolParam(q, 'follow'), timestamps: boolParam(q, 'timestamps'), tail: tailParam(q),
    since: timeParam(q, 'since'), until: timeParam(q, 'until'), signal: call.signal,
  };
  const info = await call.engine.containers.inspect(call.params.id!);
  const tty = info.Config.Tty === true;
  // The same words hijack() uses: 1.42 named the framed stream; older clients know only raw-stream.
  const contentType = tty || compareVersions(call.version, '1.42') < 0 ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  const entries = call.engine.containers.logs(info.Id, opts);
  res.writeHead(200, { 'Content-Type': contentType });
  // A follow may stay quiet a long time: the client must see the answer begin now.
  res.flushHeaders();
  for await (const e of entries) {
    if (call.signal.aborted || res.destroyed) break;
    if (e.stream === 'stdout' ? !stdout : !stderr) continue;
    const payload = Buffer.from(`${opts.timestamps ? `${e.time} ` : ''}${e.line}${e.partial ? '' : '\n'}`);
    if (!tty) res.write(frameHeader(e.stream === 'stdout' ? 1 : 2, payload.length));
    if (!res.write(payload)) await drained(res);
  }
  if (!res.writableEnded) res.end();
}

// ------------------------------------------------------------------ top, stats

async function top(call: Call): Promise<void> {
  const psArgs = (call.query.get('ps_args') ?? '').split(/\s+/).filter(Boolean);
  const { titles, processes } = await call.engine.containers.top(call.params.id!, psArgs);
  sendJson(resOf(call), 200, { Titles: titles, Processes: processes });
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * Docker's stats object, as the docker CLI reads it (cli/command/container/stats_helpers.go): CPU % from
 * the cpu_stats − precpu_stats deltas scaled by online_cpus, memory as usage (already without the page
 * cache: the CLI subtracts inactive_file only when `stats` has it) over limit, block I/O from the
 * read/write entries, network from every interface.
 */
export function statsView(s: ContainerStats, read: Date, preread: Date | undefined): Record<string, unknown> {
  const cpu = s.cpu;
  const usage = (total: number, system: number) => ({
    cpu_usage: { total_usage: total, usage_in_kernelmode: 0, usage_in_usermode: 0 },
    system_cpu_usage: system,
    online_cpus: cpu?.onlineCpus ?? 0,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  });
  return {
    read: read.toISOString(),
    preread: preread ? preread.toISOString() : ZERO_TIME,
    pids_stats: { current: s.pids },
    blkio_stats: {
      io_service_bytes_recursive: [{ major: 0, minor: 0, op: 'read', value: s.blockRead }, { major: 0, minor: 0, op: 'write', value: s.blockWrite }],
      io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null,
      io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: usage(cpu?.totalNs ?? 0, cpu?.systemNs ?? 0),
    // one-shot (no preread): Docker leaves the previous sample empty, and the CLI then shows 0%.
    precpu_stats: preread ? usage(cpu?.prevTotalNs ?? 0, cpu?.prevSystemNs ?? 0) : { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
    memory_stats: { usage: s.memoryUsage, limit: s.memoryLimit, stats: {} },
    name: `/${s.name}`,
    id: s.id,
    networks: { eth0: { rx_bytes: s.netRx, rx_packets: 0, rx_errors: 0, rx_dropped: 0, tx_bytes: s.netTx, tx_packets: 0, tx_errors: 0, tx_dropped: 0 } },
  };
}

async function readStats(call: Call, oneShot: boolean): Promise<Record<string, unknown>> {
  const before = new Date();
  const [s] = await call.engine.containers.stats([call.params.id!]);
  if (!s) throw new NotFoundError('container', call.params.id!);
  return statsView(s, new Date(), oneShot ? undefined : before);
}

async function stats(call: Call): Promise<void> {
  const res = resOf(call);
  const stream = boolParam(call.query, 'stream', true);
  const oneShot = boolParam(call.query, 'one-shot');
  if (stream && oneShot) throw new ApiError(400, 'cannot have stream=true and one-shot=true');
  if (!stream) return sendJson(res, 200, await readStats(call, oneShot));
  // The first reading before the headers: a missing container is still a 404.
  let next = await readStats(call, false);
  const out = jsonLines(res);
  for (;;) {
    out.write(next);
    // One object a second, as Docker sends them; the wait ends early when the client goes away.
    await sleep(1000, undefined, { signal: call.signal }).catch(() => {});
    if (call.signal.aborted || res.destroyed) break;
    try {
      next = await readStats(call, false);
    } catch (err) {
      if (!(err instanceof NotFoundError)) out.fail(err);
      break;
    }
  }
  out.end();
}

// ------------------------------------------------------------------ rename, update

async function rename(call: Call): Promise<void> {
  const name = call.query.get('name');
  if (!name) throw new ApiError(400, 'the new name is missing: give it as ?name=NEW');
  await call.engine.containers.rename(call.params.id!, name.replace(/^\//, ''));
  sendStatus(resOf(call), 204);
}

type UpdateChange = ResourceRequest & { restart?: string };

/** Fields of UpdateConfig the Engine applies, each with its type check and its place in the request. */
const UPDATE_FIELDS: Record<string, { type: 'number' | 'string' | 'boolean' | 'rates' | 'restart'; apply(c: UpdateChange, v: any): void }> = {
  Memory: { type: 'number', apply: (c, v: number) => { if (v) c.memory = v; } },
  MemorySwap: { type: 'number', apply: (c, v: number) => { if (v) c.memorySwap = v; } },
  MemoryReservation: { type: 'number', apply: (c, v: number) => { if (v) c.memoryReservation = v; } },
  NanoCpus: { type: 'number', apply: (c, v: number) => { if (v) c.cpus = String(v / 1e9); } },
  CpuShares: { type: 'number', apply: (c, v: number) => { if (v) c.cpuShares = v; } },
  CpuPeriod: { type: 'number', apply: (c, v: number) => { if (v) c.cpuPeriod = v; } },
  CpuQuota: { type: 'number', apply: (c, v: number) => { if (v) c.cpuQuota = v; } },
  CpusetCpus: { type: 'string', apply: (c, v: string) => { if (v) c.cpusetCpus = v; } },
  CpusetMems: { type: 'string', apply: (c, v: string) => { if (v) c.cpusetMems = v; } },
  // Docker: 0 (or null) leaves the limit as it is; -1 lifts it.
  PidsLimit: { type: 'number', apply: (c, v: number) => { if (v) c.pidsLimit = v; } },
  BlkioWeight: { type: 'number', apply: (c, v: number) => { if (v) c.blkioWeight = v; } },
  BlkioDeviceReadBps: { type: 'rates', apply: (c, v: { Path: string; Rate: number }[]) => { if (v.length) c.deviceReadBps = v.map((d) => `${d.Path}:${d.Rate}`); } },
  BlkioDeviceWriteBps: { type: 'rates', apply: (c, v: { Path: string; Rate: number }[]) => { if (v.length) c.deviceWriteBps = v.map((d) => `${d.Path}:${d.Rate}`); } },
  OomKillDisable: { type: 'boolean', apply: (c, v: boolean) => { c.oomKillDisable = v; } },
  RestartPolicy: {
    type: 'restart',
    apply: (c, v: { Name?: string; MaximumRetryCount?: number }) => {
      if (!v.Name) return;
      c.restart = v.Name === 'on-failure' && v.MaximumRetryCount ? `on-failure:${v.MaximumRetryCount}` : v.Name;
    },
  },
};

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'number': return typeof v === 'number' && Number.isInteger(v);
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'rates': return Array.isArray(v) && v.every((d) => d && typeof d === 'object' && typeof d.Path === 'string' && typeof d.Rate === 'number' && Number.isInteger(d.Rate) && d.Rate >= 0);
    case 'restart': return !!v && typeof v === 'object' && !Array.isArray(v)
      && ((v as any).Name === undefined || typeof (v as any).Name === 'string')
      && ((v as any).MaximumRetryCount === undefined || (typeof (v as any).MaximumRetryCount === 'number' && Number.isInteger((v as any).MaximumRetryCount)));
    default: return false;
  }
}

/** Go's zero values, as the docker CLI sends every field of UpdateConfig it was not asked to set. */
function isUnset(v: unknown): boolean {
  return v === null || v === undefined || v === 0 || v === '' || v === false || (Array.isArray(v) && v.length === 0)
    || (typeof v === 'object' && !Array.isArray(v) && Object.values(v as object).every(isUnset));
}

/** POST /containers/{id}/update's body as the Engine's update request; a field set that Berth cannot apply is a 400 naming it. */
export function parseUpdate(body: Record<string, unknown>): UpdateChange {
  const change: UpdateChange = {};
  const unsupported: string[] = [];
  for (const [key, v] of Object.entries(body)) {
    const field = UPDATE_FIELDS[key];
    // MemorySwappiness -1 is Docker's "as the host's", what Berth does.
    if (!field) {
      if (!isUnset(v) && !(key === 'MemorySwappiness' && v === -1)) unsupported.push(key);
      continue;
    }
    if (v === null) continue;
    if (!typeOk(field.type, v)) throw new ApiError(400, `invalid type for ${key}: ${JSON.stringify(v).slice(0, 100)}`);
    field.apply(change, v);
  }
  if (unsupported.length) throw new ApiError(400, `${unsupported.join(', ')} ${unsupported.length > 1 ? 'are' : 'is'} not supported yet`);
  return change;
}

async function update(call: Call): Promise<void> {
  const change = parseUpdate(await readJson(call));
  if (Object.keys(change).length) await call.engine.containers.update(call.params.id!, change);
  else await call.engine.containers.inspect(call.params.id!);
  sendJson(resOf(call), 200, { Warnings: [] });
}

// ------------------------------------------------------------------ changes, export

const CHANGE_KIND = { C: 0, A: 1, D: 2 } as const;

async function changes(call: Call): Promise<void> {
  const list = await call.engine.containers.diff(call.params.id!);
  sendJson(resOf(call), 200, list.map((c) => ({ Path: c.path, Kind: CHANGE_KIND[c.kind] })));
}

/** Streams a tar into the answer; a failure before the first byte is still a proper error answer. */
async function sendTar(call: Call, write: (res: ServerResponse) => Promise<unknown>): Promise<void> {
  const res = resOf(call);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/x-tar');
  try {
    await write(res);
  } catch (err) {
    // The client went away: the copy's tar was killed with the stream, and nothing is left to answer.
    if (call.signal.aborted) return;
    throw err;
  }
  if (!res.writableEnded) res.end();
}

async function exportRootfs(call: Call): Promise<void> {
  await sendTar(call, (res) => call.engine.containers.export(call.params.id!, res));
}

// ------------------------------------------------------------------ archive (docker cp)

/** Go's os.FileMode type bits, which the docker CLI reads from the path stat (IsDir, the link bit). */
const GO_MODE = { dir: 1 << 31, symlink: 1 << 27, device: 1 << 26, pipe: 1 << 25, socket: 1 << 24, setuid: 1 << 23, setgid: 1 << 22, charDevice: 1 << 21, sticky: 1 << 20 };

export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  switch (mode & 0o170000) {
    case 0o040000: m |= GO_MODE.dir; break;
    case 0o120000: m |= GO_MODE.symlink; break;
    case 0o060000: m |= GO_MODE.device; break;
    case 0o020000: m |= GO_MODE.device | GO_MODE.charDevice; break;
    case 0o010000: m |= GO_MODE.pipe; break;
    case 0o140000: m |= GO_MODE.socket; break;
    default: break;
  }
  if (mode & 0o4000) m |= GO_MODE.setuid;
  if (mode & 0o2000) m |= GO_MODE.setgid;
  if (mode & 0o1000) m |= GO_MODE.sticky;
  // Bit 31 makes a negative int32 in JS bit arithmetic; Go reads it as an unsigned 32-bit mode.
  return m >>> 0;
}

function archivePath(call: Call): string {
  const p = call.query.get('path');
  if (!p) throw new ApiError(400, 'the path is missing: give it as ?path=PATH');
  return p;
}

/** The path's stat, with Docker's 404 words (the CLI prints them) when it does not exist. */
async function statPath(call: Call, p: string): Promise<PathStat> {
  try {
    return await call.engine.containers.statPath(call.params.id!, p);
  } catch (err) {
    if (err instanceof NotFoundError && err.kind !== 'container') throw new ApiError(404, `Could not find the file ${p} in container ${call.params.id}`);
    throw err;
  }
}

function statHeader(st: PathStat): string {
  const json = JSON.stringify({ name: st.name, size: st.size, mode: goFileMode(st.mode), mtime: st.mtime, linkTarget: st.linkTarget });
  return Buffer.from(json).toString('base64');
}

async function statArchive(call: Call): Promise<void> {
  const st = await statPath(call, archivePath(call));
  const res = resOf(call);
  res.writeHead(200, { 'X-Docker-Container-Path-Stat': statHeader(st), 'Content-Type': 'application/x-tar' });
  res.end();
}

async function getArchive(call: Call): Promise<void> {
  const p = archivePath(call);
  const st = await statPath(call, p);
  resOf(call).setHeader('X-Docker-Container-Path-Stat', statHeader(st));
  await sendTar(call, (res) => call.engine.containers.copyFrom(call.params.id!, p, res));
}

async function putArchive(call: Call): Promise<void> {
  const p = archivePath(call);
  const q = call.query;
  // The docker CLI always asks for noOverwriteDirNonDir; GNU tar refuses a file over a folder on its own.
  boolParam(q, 'noOverwriteDirNonDir');
  const archive = boolParam(q, 'copyUIDGID');
  await statPath(call, p);
  try {
    await call.engine.containers.copyTo(call.params.id!, p, call.req, { archive });
  } catch (err) {
    // Past the checks above, what fails is tar reading the client's archive: the request's fault.
    if (err instanceof RuntimeError) throw new ApiError(400, `the archive could not be extracted into ${p}: ${err.message}`);
    throw err;
  }
  sendStatus(resOf(call), 200);
}
