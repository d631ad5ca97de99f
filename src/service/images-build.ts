/**
 * `POST /build` (Docker's classic builder: a tar context in the body, plain or gzip, and the
 * `{"stream"}` / `{"aux":{"ID"}}` lines) over engine.images.buildEvents, and `POST /commit` over
 * engine.containers.commit.
 */
import { promises as fsp } from 'node:fs';
import { buildLine } from '../build/progress.js';
import { buildTempDir } from '../paths.js';
import { registryConfig } from './images-transfer.js';
import { secretIdsOf, splitSecrets, type SplitSecrets } from './build-secrets.js';
import { ApiError } from './errors.js';
import { boolParam, readJson } from './http.js';
import { LazyLines, streamText } from './images-lines.js';
import type { Call, Router } from './router.js';

/**
 * Query parameters the docker CLI and dockerode send that Berth's build takes. Any other parameter is
 * refused when it holds something other than the empty value the clients send by default ("", "0",
 * "null", "[]", "{}"), so that no option is silently dropped.
 */
const TAKEN = new Set(['t', 'dockerfile', 'buildargs', 'target', 'nocache', 'pull', 'networkmode', 'labels', 'q', 'rm', 'forcerm', 'platform', 'version', 'session', 'secrets']);
const EMPTY = new Set(['', '0', 'null', '[]', '{}', 'false']);

function stringMap(q: URLSearchParams, name: string): Record<string, string> | undefined {
  const raw = q.get(name);
  if (raw === null || raw === '' || raw === 'null') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `${name} is not JSON: ${raw.slice(0, 200)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, `${name} must be a JSON object of strings`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    // Docker's buildargs may map a name to null: "take the value from the client's environment", which the
    // CLI already did; a null left here has no value to give.
    if (v === null) continue;
    if (typeof v !== 'string') throw new ApiError(400, `${name}: the value of "${k}" must be a string`);
    out[k] = v;
  }
  return out;
}

function network(q: URLSearchParams): 'none' | 'host' | 'bridge' | undefined {
  const mode = q.get('networkmode');
  if (!mode || mode === 'default') return undefined;
  if (mode === 'none' || mode === 'host' || mode === 'bridge') return mode;
  throw new ApiError(400, `networkmode "${mode}" is not supported yet: builds run RUN steps on none, host or the default bridge`);
}

async function build(call: Call): Promise<void> {
  const q = call.query;
  for (const [k, v] of q) {
    if (!TAKEN.has(k) && !EMPTY.has(v)) throw new ApiError(400, `the build option ${k}=${v.slice(0, 100)} is not supported yet`);
  }
  if ((q.get('version') ?? '1') !== '1') throw new ApiError(400, `builder version ${q.get('version')} (BuildKit) is not supported; Berth serves the classic builder (version 1, DOCKER_BUILDKIT=0)`);
  // Berth always removes a step's container once its layer is stored (forcerm too): keeping them is refused.
  if (!boolParam(q, 'rm', true)) throw new ApiError(400, 'rm=0 (keeping intermediate containers) is not supported yet');
  if (q.get('session')) throw new ApiError(400, 'build sessions (session=) are BuildKit\'s and not supported; use the classic builder');
  const quiet = boolParam(q, 'q');
  // Berth's own parameter: the --secret files of a Berth client, at the head of the context (build-secrets.ts).
  const secretIds = secretIdsOf(q.get('secrets'));
  const split = secretIds ? await splitSecrets(call.req, secretIds, buildTempDir(call.engine.root)) : undefined;
  try {
    await runBuild(call, quiet, split);
  } finally {
    if (split) await fsp.rm(split.dir, { recursive: true, force: true });
  }
}

async function runBuild(call: Call, quiet: boolean, split: SplitSecrets | undefined): Promise<void> {
  const q = call.query;
  const dockerfile = q.get('dockerfile') || undefined;
  const registryAuth = registryConfig(call);
  const platform = q.get('platform') || undefined;
  const target = q.get('target') || undefined;
  const opts = {
    context: split?.context ?? call.req,
    ...(split && { secrets: split.secrets }),
    ...(registryAuth && { registryAuth }),
    tags: q.getAll('t').filter(Boolean),
    ...(dockerfile && { dockerfile }),
    ...(target && { target }),
    ...(platform && { platform }),
    buildArgs: stringMap(q, 'buildargs') ?? {},
    labels: stringMap(q, 'labels') ?? {},
    noCache: boolParam(q, 'nocache'),
    pull: boolParam(q, 'pull'),
    network: network(q),
    signal: call.signal,
  };
  const out = new LazyLines(call.res!);
  try {
    for await (const e of call.engine.images.buildEvents(opts)) {
      if (e.type === 'done') {
        out.write({ aux: { ID: e.id } });
        if (quiet) out.write({ stream: `${e.id}\n` });
      }
      if (quiet) continue;
      const line = buildLine(e);
      if (line !== undefined) streamText(out, line);
    }
  } catch (err) {
    return out.fail(err);
  }
  out.end();
}

async function commit(call: Call): Promise<void> {
  const q = call.query;
  const container = q.get('container');
  if (!container) throw new ApiError(400, 'container is required');
  // The body is a container config to merge into the image's; Berth takes the same through `changes`.
  const body = await readJson(call, { optional: true });
  const set = Object.entries(body).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length) && v !== '' && v !== false
    && !(typeof v === 'object' && !Array.isArray(v) && !Object.keys(v).length));
  if (set.length) throw new ApiError(400, `a commit's config body (${set.map(([k]) => k).join(', ')}) is not supported yet; give Dockerfile instructions in changes=`);
  const repo = q.get('repo') || '';
  const tag = q.get('tag') || '';
  if (tag && !repo) throw new ApiError(400, 'a tag needs a repo');
  const id = await call.engine.containers.commit(container, {
    ...(repo && { reference: tag ? `${repo}:${tag}` : repo }),
    changes: q.getAll('changes').flatMap((c) => c.split('\n')).filter((c) => c.trim()),
    ...(q.get('comment') && { message: q.get('comment')! }),
    ...(q.get('author') && { author: q.get('author')! }),
    pause: boolParam(q, 'pause', true),
  });
  const text = JSON.stringify({ Id: id });
  call.res!.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

export function registerBuild(r: Router): void {
  r.add('POST', '/build', build);
  r.add('POST', '/commit', commit);
}
