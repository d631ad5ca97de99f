/**
 * Pull (`POST /images/create?fromImage=`) and push (`POST /images/{name}/push`): Berth's transfer events as
 * the JSON-lines progress dockerd writes (`{"status","progressDetail","id"}`), which the docker CLI and
 * dockerode render. The login comes from the X-Registry-Auth header when the client sends one.
 */
import type { RegistryCredentials } from '../registry/index.js';
import { normalizeRegistry, resolveReference } from '../registry/names.js';
import type { TransferEvent } from '../types.js';
import { ApiError } from './errors.js';
import { familiar } from './images.js';
import { LazyLines } from './images-lines.js';
import type { Call, Router } from './router.js';

/** dockerd's words for a layer's state. */
const LAYER_STATUS: Record<Extract<TransferEvent, { type: 'layer' }>['status'], string> = {
  waiting: 'Waiting', exists: 'Already exists', downloading: 'Downloading', verifying: 'Verifying Checksum',
  downloaded: 'Download complete', extracting: 'Extracting', complete: 'Pull complete', mounted: 'Mounted from',
  uploading: 'Pushing', pushed: 'Pushed', retrying: 'Retrying',
};

/**
 * X-Registry-Auth: base64url (or plain base64) JSON `{username, password, serveraddress}`, or an identity
 * token. An empty object is no login (the credential store's, if any, is used).
 */
export function registryAuth(call: Call): RegistryCredentials | undefined {
  const value = headerJson(call, 'X-Registry-Auth');
  return value === undefined ? undefined : loginOf(value, 'X-Registry-Auth');
}

/**
 * X-Registry-Config (a build's): base64url JSON `{"REGISTRY": {username, password}, ...}`, every login the
 * client keeps; the builder's pulls take the one of each image's registry.
 */
export function registryConfig(call: Call): Record<string, RegistryCredentials> | undefined {
  const value = headerJson(call, 'X-Registry-Config');
  if (value === undefined) return undefined;
  const out: Record<string, RegistryCredentials> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new ApiError(400, `X-Registry-Config: the entry of ${key.slice(0, 100)} must be a JSON object`);
    const creds = loginOf(entry as Record<string, unknown>, `X-Registry-Config ${key.slice(0, 100)}`);
    if (!creds) continue;
    try {
      out[normalizeRegistry(key)] = creds;
    } catch { /* a key that names no registry: no image of the build can use it */ }
  }
  return Object.keys(out).length ? out : undefined;
}

/** A header of base64url (or plain base64) JSON holding an object; undefined when absent or empty. */
function headerJson(call: Call, name: string): Record<string, unknown> | undefined {
  const raw = call.req.headers[name.toLowerCase()];
  if (typeof raw !== 'string' || raw === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new ApiError(400, `the ${name} header is not base64-encoded JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError(400, `the ${name} header must hold a JSON object`);
  return value as Record<string, unknown>;
}

/** `{username, password, identitytoken}` as a login; undefined for an empty one (no login). */
function loginOf(v: Record<string, unknown>, where: string): RegistryCredentials | undefined {
  for (const k of ['username', 'password', 'identitytoken', 'registrytoken']) {
    if (v[k] !== undefined && typeof v[k] !== 'string') throw new ApiError(400, `${where}: ${k} must be a string`);
  }
  if (v.registrytoken) throw new ApiError(400, `${where}: registrytoken is not supported yet; give username and password`);
  const username = (v.username as string | undefined) ?? '';
  const password = (v.password as string | undefined) ?? '';
  const identityToken = v.identitytoken as string | undefined;
  if (!username && !password && !identityToken) return undefined;
  return { username, password, ...(identityToken && { identityToken }) };
}

/** A layer event as dockerd writes it; `verb` picks push's words where they differ. */
function layerLine(e: Extract<TransferEvent, { type: 'layer' }>, push: boolean): Record<string, unknown> {
  if (e.status === 'mounted') return { status: `Mounted from ${e.from ?? ''}`, progressDetail: {}, id: e.id };
  if (e.status === 'exists') return { status: push ? 'Layer already exists' : 'Already exists', progressDetail: {}, id: e.id };
  if (e.status === 'waiting') return { status: push ? 'Preparing' : 'Pulling fs layer', progressDetail: {}, id: e.id };
  const detail = e.current !== undefined ? { current: e.current, ...(e.total !== undefined && { total: e.total }) } : {};
  return { status: LAYER_STATUS[e.status], progressDetail: detail, id: e.id };
}

async function pull(call: Call): Promise<void> {
  const q = call.query;
  if (q.get('fromSrc')) return importImage(call);
  const from = q.get('fromImage');
  if (!from) throw new ApiError(400, 'fromImage is required');
  for (const k of ['repo', 'message', 'changes']) if (q.get(k)) throw new ApiError(400, `${k} is only for imports (fromSrc=-)`);
  const tag = q.get('tag') ?? '';
  // The docker CLI sends the tag apart (`fromImage=busybox&tag=latest`); a digest is joined with `@`.
  const ref = !tag ? from : tag.includes(':') ? `${from}@${tag}` : `${from}:${tag}`;
  // dockerd's rule: a name with no tag at all is every tag of it (docker pull --all-tags sends tag=).
  let allTags: boolean;
  try {
    const parsed = resolveReference(ref);
    allTags = !parsed.tag && !parsed.digest;
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  const platform = q.get('platform') || undefined;
  const credentials = registryAuth(call);
  const out = new LazyLines(call.res!);
  let resolving: Extract<TransferEvent, { type: 'resolving' }> | undefined;
  try {
    for await (const e of call.engine.images.pullEvents(ref, { signal: call.signal, ...(allTags && { allTags }), ...(platform && { platform }), ...(credentials && { credentials }) })) {
      if (e.type === 'resolving') resolving = e;
      else if (e.type === 'manifest' && resolving) {
        // Written once the manifest is had, as dockerd does: a missing image or a refused login is still a status.
        const r = resolving.reference;
        const name = r.slice(resolving.registry.length + 1).replace(/[:@][^/]*$/, '');
        out.write({ status: `Pulling from ${name}`, id: r.includes('@') ? r.slice(r.indexOf('@') + 1) : r.slice(r.lastIndexOf(':') + 1) });
      } else if (e.type === 'layer') out.write(layerLine(e, false));
      else if (e.type === 'done') {
        out.write({ status: `Digest: ${e.digest}` });
        out.write({ status: `Status: ${e.changed ? 'Downloaded newer image' : 'Image is up to date'} for ${familiar(e.reference)}` });
      }
    }
  } catch (err) {
    return out.fail(err);
  }
  out.end();
}

/**
 * docker import: `fromSrc=-`, the tar in the body; dockerd's answer is JSON lines whose last status is the
 * image's ID. A URL (dockerd fetches it) is refused: this engine fetches nothing the client did not send.
 */
async function importImage(call: Call): Promise<void> {
  const q = call.query;
  if (q.get('fromSrc') !== '-') throw new ApiError(400, `fromSrc=${q.get('fromSrc')!.slice(0, 200)}: importing from a URL is not supported; send the tar in the body with fromSrc=-`);
  if (q.get('fromImage')) throw new ApiError(400, 'fromImage and fromSrc exclude each other');
  const repo = q.get('repo') || undefined;
  const tag = q.get('tag') || undefined;
  if (tag && !repo) throw new ApiError(400, 'a tag needs a repo');
  const message = q.get('message') || undefined;
  const changes = q.getAll('changes').flatMap((c) => c.split('\n')).filter((c) => c.trim());
  const out = new LazyLines(call.res!);
  try {
    const id = await call.engine.images.import(call.req, { ...(repo && { reference: tag ? `${repo}:${tag}` : repo }), changes, ...(message && { message }) });
    out.write({ status: id });
  } catch (err) {
    return out.fail(err);
  }
  out.end();
}

async function push(call: Call): Promise<void> {
  const tag = call.query.get('tag') ?? '';
  const name = call.params.name!;
  const ref = tag ? `${name}:${tag}` : name;
  const credentials = registryAuth(call);
  const out = new LazyLines(call.res!);
  try {
    const res = await call.engine.images.push(ref, {
      signal: call.signal, ...(credentials && { credentials }),
      onProgress: (e) => {
        if (e.type === 'resolving') out.write({ status: `The push refers to repository [${familiar(e.reference).replace(/[:@][^/:]*$/, '')}]` });
        else if (e.type === 'layer') out.write(layerLine(e, true));
      },
    });
    const shown = res.reference.slice(res.reference.lastIndexOf(':') + 1);
    out.write({ status: `${shown}: digest: ${res.digest} size: ${res.size}` });
    out.write({ progressDetail: {}, aux: { Tag: shown, Digest: res.digest, Size: res.size } });
  } catch (err) {
    return out.fail(err);
  }
  out.end();
}

export function registerTransfer(r: Router): void {
  r.add('POST', '/images/create', pull);
  r.add('POST', '/images/{name*}/push', push);
}
