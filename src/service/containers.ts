/**
 * The container lifecycle endpoints: create, start, stop, kill, restart, pause, unpause, wait, remove,
 * list, inspect, prune. Each is a thin call into `call.engine.containers`; what is Docker's here is only the
 * shape of requests and answers (statuses, 304s, the wait stream, the create conflict's words).
 */
import { AlreadyExistsError, NotFoundError } from '../errors.js';
import { ociArchitecture } from '../image/oci.js';
import { apiCreateError, createRequestOf } from './containers-create.js';
import { inspectApiView, listRowView } from './containers-view.js';
import { ApiError, messageOf } from './errors.js';
import { boolParam, filtersParam, intParam, readJson, sendJson, sendStatus } from './http.js';
import type { Call, Router } from './router.js';
import { containerTerminal, forgetContainerTerminal } from './exec-terminal.js';

/** Docker's words for an image reference in "No such image": the tag spelled out. */
export function imageWords(ref: string): string {
  if (ref.includes('@')) return ref;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':') ? ref : `${ref}:latest`;
}

async function create(call: Call): Promise<void> {
  const body = await readJson(call);
  const name = call.query.get('name') ?? undefined;
  // Berth runs images of this machine's platform only (docker run --platform sends it here).
  const platform = call.query.get('platform');
  if (platform && !['linux', `linux/${ociArchitecture()}`].includes(platform.replace(/\/$/, ''))) {
    throw new ApiError(400, `platform "${platform}" is not supported yet by Berth: it runs linux/${ociArchitecture()} containers only`);
  }
  const req = createRequestOf(body, name);
  let made: { id: string; warnings: string[] };
  try {
    made = await call.engine.containers.create(req);
  } catch (err) {
    // The docker CLI pulls when it reads a 404 with these words, then creates again.
    if (err instanceof NotFoundError && err.kind === 'image' && (err.ref === req.image || imageWords(err.ref) === imageWords(req.image))) {
      throw new ApiError(404, `No such image: ${imageWords(req.image)}`);
    }
    if (err instanceof AlreadyExistsError && err.kind === 'container') {
      const holder = await call.engine.containers.inspect(err.ref).then((c) => c.Id, () => '');
      throw new ApiError(409, `Conflict. The container name "/${err.ref}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    throw apiCreateError(err);
  }
  // Docker's ConsoleSize: the terminal's first size, which the start hands to the container before its
  // process runs (a resize can only come once it runs: too late for a first `stty size`).
  const consoleSize = consoleSizeOf(body);
  if (req.tty && consoleSize) containerTerminal(call.state, made.id).resize(consoleSize);
  sendJson(call.res!, 201, { Id: made.id, Warnings: made.warnings });
}

/** HostConfig.ConsoleSize as [height, width] when both are whole and non-zero; anything else is no size. */
function consoleSizeOf(body: Record<string, unknown>): { rows: number; columns: number } | undefined {
  const v = (body.HostConfig as Record<string, unknown> | undefined)?.ConsoleSize;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && x > 0 && x <= 0xffff)) return undefined;
  return { rows: v[0] as number, columns: v[1] as number };
}

/** `?t=` seconds; Docker also takes `-1` (wait for ever) and absent (the container's StopTimeout). */
function timeoutParam(call: Call): number | undefined {
  return intParam(call.query, 't');
}

async function start(call: Call): Promise<void> {
  const id = call.params.id!;
  const info = await call.engine.containers.inspect(id);
  const state = info.State;
  if (state.Paused) throw new ApiError(409, 'cannot start a paused container, try unpause instead');
  if (state.Running) return sendStatus(call.res!, 304);
  const detachKeys = call.query.get('detachKeys') || undefined;
  // A tty container starts at the size the client's resize calls give its terminal (docker run -it).
  const terminal = info.Config.Tty ? containerTerminal(call.state, info.Id) : undefined;
  await call.engine.containers.start(id, { ...(detachKeys ? { detachKeys } : {}), ...(terminal ? { terminal } : {}) });
  sendStatus(call.res!, 204);
}

async function stop(call: Call): Promise<void> {
  const id = call.params.id!;
  if (!(await call.engine.containers.inspect(id)).State.Running) return sendStatus(call.res!, 304);
  await call.engine.containers.stop(id, { timeout: timeoutParam(call), signal: call.query.get('signal') || undefined });
  sendStatus(call.res!, 204);
}

const CONDITIONS = ['not-running', 'next-exit', 'removed'] as const;

/**
 * The status is sent at once (clients such as `docker run` wait on this before they start the container),
 * the body when the container stops. A client that goes away aborts the wait (call.signal).
 */
async function wait(call: Call): Promise<void> {
  const raw = call.query.get('condition') || 'not-running';
  const condition = CONDITIONS.find((c) => c === raw);
  if (!condition) throw new ApiError(400, `invalid condition: "${raw}" is not one of ${CONDITIONS.join(', ')}`);
  // `docker run --rm` sends this wait and then the start on another connection: a short-lived container can
  // exit and be removed before the wait is looked at here. Its "removed" has come then: it is answered with
  // the exit code its die event recorded (only for that condition, and only when that event is found).
  const gone = async (err: unknown) => (condition === 'removed' && err instanceof NotFoundError ? exitOfRemoved(call, call.params.id!) : undefined);
  let id: string;
  try {
    id = (await call.engine.containers.inspect(call.params.id!)).Id;
  } catch (err) {
    const code = await gone(err);
    if (code === undefined) throw err;
    return sendJson(call.res!, 200, { StatusCode: code, Error: null });
  }
  const res = call.res!;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  let answer: { StatusCode: number; Error: null | { Message: string } };
  try {
    answer = { StatusCode: await call.engine.containers.wait(id, { condition, signal: call.signal }), Error: null };
  } catch (err) {
    if (call.signal.aborted) {
      res.destroy();
      return;
    }
    const code = await gone(err);
    answer = code === undefined ? { StatusCode: -1, Error: { Message: messageOf(err) } } : { StatusCode: code, Error: null };
  }
  res.end(JSON.stringify(answer) + '\n');
}

/** The exit code of the last die event of `ref` in the past 10 minutes (a container removed since), if any. */
async function exitOfRemoved(call: Call, ref: string): Promise<number | undefined> {
  const now = Math.floor(Date.now() / 1000);
  let code: number | undefined;
  const events = call.engine.system.events({ since: String(now - 600), until: String(now + 1), filters: ['type=container', 'event=die', `container=${ref}`] });
  for await (const ev of events) {
    const n = Number(ev.attributes.exitCode);
    if (Number.isInteger(n)) code = n;
  }
  return code;
}

async function remove(call: Call): Promise<void> {
  if (boolParam(call.query, 'link')) throw new ApiError(400, 'link=true is not supported yet by Berth: legacy links are removed with their container');
  const { Id } = await call.engine.containers.inspect(call.params.id!);
  await call.engine.containers.remove(Id, { force: boolParam(call.query, 'force'), volumes: boolParam(call.query, 'v') });
  forgetContainerTerminal(call.state, Id);
  sendStatus(call.res!, 204);
}

async function list(call: Call): Promise<void> {
  const limit = intParam(call.query, 'limit');
  const rows = await call.engine.containers.list({
    all: boolParam(call.query, 'all'),
    filters: filtersParam(call.query),
    // Docker: limit ≤ 0 is no limit
    last: limit !== undefined && limit > 0 ? limit : undefined,
    size: boolParam(call.query, 'size'),
  });
  sendJson(call.res!, 200, rows.map(listRowView));
}

async function inspect(call: Call): Promise<void> {
  sendJson(call.res!, 200, inspectApiView(await call.engine.containers.inspect(call.params.id!, { size: boolParam(call.query, 'size') })));
}

async function prune(call: Call): Promise<void> {
  const filters = filtersParam(call.query);
  // Docker reports the bytes the removed containers had written; measured before they go.
  const before = await call.engine.containers.list({ all: true, size: true });
  const { deleted } = await call.engine.containers.prune({ filters });
  const gone = new Set(deleted);
  const reclaimed = before.filter((c) => gone.has(c.id)).reduce((n, c) => n + (c.sizeRw ?? 0), 0);
  sendJson(call.res!, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

function noContent(action: (call: Call, id: string) => Promise<void>) {
  return async (call: Call) => {
    await action(call, call.params.id!);
    sendStatus(call.res!, 204);
  };
}

/** The containers endpoints of the Engine API. */
export function registerContainers(r: Router): void {
  r.add('POST', '/containers/create', create);
  r.add('GET', '/containers/json', list);
  r.add('POST', '/containers/prune', prune);
  r.add('GET', '/containers/{id}/json', inspect);
  r.add('POST', '/containers/{id}/start', start);
  r.add('POST', '/containers/{id}/stop', stop);
  r.add('POST', '/containers/{id}/kill', noContent((call, id) => call.engine.containers.kill(id, call.query.get('signal') || undefined)));
  r.add('POST', '/containers/{id}/restart', noContent((call, id) => call.engine.containers.restart(id, { timeout: timeoutParam(call) })));
  r.add('POST', '/containers/{id}/pause', noContent((call, id) => call.engine.containers.pause(id)));
  r.add('POST', '/containers/{id}/unpause', noContent((call, id) => call.engine.containers.unpause(id)));
  r.add('POST', '/containers/{id}/wait', wait);
  r.add('DELETE', '/containers/{id}', remove);
}
