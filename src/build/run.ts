import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { parseTagTarget } from '../image/reference.js';
import { buildDockerfile, type BuilderDeps } from './builder.js';
import { openContext, removeStaleContexts } from './context.js';
import { parseDockerfile } from './dockerfile.js';
import type { BuildContext, BuildOptions, BuildResult } from './index.js';

/** `berth build`: the context opened, the Dockerfile read and parsed, built; the context closed whatever happens. */
export async function buildImage(deps: BuilderDeps, opts: BuildOptions): Promise<BuildResult> {
  // A bad -t is the user's mistake, found before the build rather than after all its steps ran.
  for (const t of opts.tags ?? []) parseTagTarget(t);
  await checkSecrets(opts.secrets ?? []);
  await removeStaleContexts(deps.tempDir);
  const inContext = typeof opts.dockerfile === 'string' ? dockerfileInContext(opts.context, opts.dockerfile) : undefined;
  const context = await openContext(opts.context, { tempParent: deps.tempDir, ...(inContext !== undefined ? { dockerfile: inContext } : {}) });
  try {
    const { text, name } = await readDockerfile(context, opts.dockerfile, inContext);
    const df = parseDockerfile(text, { file: name });
    return await buildDockerfile(deps, df, context, opts);
  } finally {
    await context.close();
  }
}

/**
 * The Dockerfile's path relative to the context, when it is there (its `.dockerignore` beside it then counts).
 * With a folder context, `-f` is a host path (absolute or from the working folder, as Docker's); with a tar
 * on stdin it names a file inside the tar.
 */
function dockerfileInContext(context: BuildOptions['context'], file: string): string | undefined {
  if (typeof context !== 'string') return file;
  const rel = path.relative(path.resolve(context), path.resolve(file));
  return rel === '' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel) ? undefined : rel;
}

async function readDockerfile(context: BuildContext, dockerfile: BuildOptions['dockerfile'], inContext: string | undefined): Promise<{ text: string; name: string }> {
  if (dockerfile && typeof dockerfile === 'object') return { text: dockerfile.text, name: '-' };
  if (dockerfile === undefined || inContext !== undefined) return context.readDockerfile(inContext);
  // Docker reads a Dockerfile outside the context too (it is sent on its own).
  const file = path.resolve(dockerfile);
  try {
    return { text: await fsp.readFile(file, 'utf8'), name: file };
  } catch (err) {
    throw new NotFoundError('file', `${file} (the Dockerfile)`, 'give its path with -f', { cause: err });
  }
}

/** Each `--secret` names a readable file, each id once: checked before anything is built. */
export async function checkSecrets(secrets: NonNullable<BuildOptions['secrets']>): Promise<void> {
  const ids = new Set<string>();
  for (const { id, src } of secrets) {
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new InvalidArgumentError('--secret', `id "${id}" is not a name of letters, digits, ".", "_" or "-"`);
    if (ids.has(id)) throw new InvalidArgumentError('--secret', `id "${id}" is given twice`, 'give each secret once');
    ids.add(id);
    const st = await fsp.stat(src).catch((err: unknown) => {
      throw new NotFoundError('file', `${src} (secret "${id}")`, 'give the path of a file that holds the secret', { cause: err });
    });
    if (!st.isFile()) throw new InvalidArgumentError('--secret', `${src} (secret "${id}") is not a file`, 'give the path of a file that holds the secret');
  }
}
