import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { buildDockerfile, type BuilderDeps, type BuildContext } from './builder.js';
import type { BuildOptions, BuildResult } from './index.js';
import { parseDockerfile } from './miniparse.js';

/** `berth build`: the context and the Dockerfile read, parsed, built. */
export async function buildImage(deps: BuilderDeps, opts: BuildOptions): Promise<BuildResult> {
  if (opts.secrets?.length) throw new InvalidArgumentError('--secret', 'build secrets are not built yet', 'leave --secret out');
  const context = await openContext(opts.context);
  const { text, file } = await readDockerfile(context.root, opts.dockerfile);
  const df = parseDockerfile(text, { file });
  return buildDockerfile(deps, df, context, opts);
}

// TODO(#15): context.ts (15c) replaces this: tar streams, .dockerignore.
async function openContext(context: BuildOptions['context']): Promise<BuildContext> {
  if (typeof context !== 'string') throw new InvalidArgumentError('context', 'a context on stdin is not built yet', 'give a directory');
  const root = path.resolve(context);
  const st = await fsp.stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new NotFoundError('file', `${context} (the build context)`, 'give an existing directory as the context');
  return { root };
}

async function readDockerfile(root: string, dockerfile: BuildOptions['dockerfile']): Promise<{ text: string; file: string }> {
  if (dockerfile && typeof dockerfile === 'object') return { text: dockerfile.text, file: '-' };
  const file = path.resolve(root, dockerfile ?? 'Dockerfile');
  try {
    return { text: await fsp.readFile(file, 'utf8'), file };
  } catch (err) {
    throw new NotFoundError('file', `${file} (the Dockerfile)`, 'give its path with -f', { cause: err });
  }
}
