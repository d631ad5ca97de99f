/**
 * The --secret files of a remote build (src/build/index.ts REMOTE_SECRETS_DIR): read off the head of the
 * context tar into a private folder before the build starts, the rest of the tar passed on to the builder
 * without them. A secret entry after the context's first other entry is refused rather than passed on.
 */
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { REMOTE_SECRETS_DIR } from '../build/index.js';
import { makeBuildTemp } from '../build/context.js';
import { ApiError } from './errors.js';

export interface SplitSecrets {
  /** the context tar without the secrets */
  context: Readable;
  /** `--secret` entries as the builder takes them, the files in `dir` */
  secrets: { id: string; src: string }[];
  /** the private folder of the files; the caller removes it after the build */
  dir: string;
}

/** Parses `secrets=["ID",...]`: undefined when absent. */
export function secretIdsOf(raw: string | null): string[] | undefined {
  if (raw === null || raw === '' || raw === '[]') return undefined;
  let ids: unknown;
  try {
    ids = JSON.parse(raw);
  } catch {
    throw new ApiError(400, `secrets is not JSON: ${raw.slice(0, 200)}`);
  }
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && /^[A-Za-z0-9_.-]+$/.test(id))) {
    throw new ApiError(400, 'secrets must be a JSON list of ids (letters, digits, ".", "_" or "-")');
  }
  return ids as string[];
}

/**
 * `tempParent` is the store's build temp folder: a folder left there by a service killed mid-build bears
 * its pid and is swept by the next build (build/context.ts removeStaleContexts).
 */
export async function splitSecrets(body: Readable, ids: readonly string[], tempParent: string): Promise<SplitSecrets> {
  const { default: tar } = await import('tar-stream');
  const dir = await makeBuildTemp(tempParent, 'secrets');
  const extract = tar.extract();
  const pack = tar.pack();
  const out = new PassThrough();
  let inContext = false;
  let headDone!: () => void;
  let headFailed!: (err: unknown) => void;
  const head = new Promise<void>((resolve, reject) => { headDone = resolve; headFailed = reject; });
  const fail = (err: unknown) => {
    headFailed(err);
    out.destroy(err as Error);
  };
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '');
    const secret = name === REMOTE_SECRETS_DIR || name.startsWith(`${REMOTE_SECRETS_DIR}/`);
    if (secret) {
      if (inContext) return fail(new ApiError(400, `${name}: the build's secrets must come before the context in the tar`));
      const id = name.slice(REMOTE_SECRETS_DIR.length + 1);
      if (!id || header.type === 'directory') { stream.resume(); return next(); }
      if (header.type !== 'file' || !ids.includes(id) || id.includes('/')) return fail(new ApiError(400, `${name}: not a secret this build names`));
      pipeline(stream, createWriteStream(path.join(dir, id), { mode: 0o600, flags: 'wx' })).then(() => next(), fail);
      return;
    }
    if (!inContext) {
      inContext = true;
      headDone();
    }
    stream.pipe(pack.entry(header, (err) => (err ? fail(err) : next())));
  });
  extract.on('finish', () => {
    headDone();
    pack.finalize();
  });
  extract.on('error', fail);
  body.on('error', fail);
  pack.pipe(out);
  body.pipe(extract);
  try {
    await head;
    const missing = [];
    for (const id of ids) if (!(await fsp.stat(path.join(dir, id)).catch(() => undefined))) missing.push(id);
    if (missing.length) throw new ApiError(400, `the context sent no file for the secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  } catch (err) {
    body.destroy();
    out.destroy();
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { context: out, secrets: ids.map((id) => ({ id, src: path.join(dir, id) })), dir };
}
