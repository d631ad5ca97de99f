import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { DOCKERFILE_MAX, unpackContext } from './contexttar.js';
import { cleanPath, parseDockerIgnore, type DockerIgnore } from './ignore.js';
import type { BuildContext, ContextEntry, OpenContextOptions } from './index.js';
import { EntryHasher, SourceResolver } from './sources.js';

export { isTarHeader } from './contexttar.js';
export { EntryHasher, SourceResolver, type SourceResolverOptions } from './sources.js';

const TEMP_PREFIX = 'berth-context-';

/**
 * Opens a build context: a directory (used in place, never copied) or a tar stream, plain or gzip, which is
 * unpacked into a fresh folder under `opts.tempParent`. A stream that is not a tar is taken as a Dockerfile
 * with an empty context, as `docker build - < Dockerfile` does. On any failure nothing is left behind.
 */
export async function openContext(src: string | Readable, opts: OpenContextOptions = {}): Promise<BuildContext> {
  if (typeof src === 'string') {
    const root = await contextDir(src);
    return new Context(root, undefined, undefined, opts);
  }
  const parent = opts.tempParent ?? os.tmpdir();
  await fs.promises.mkdir(parent, { recursive: true });
  // The PID in the name lets removeStaleContexts tell a crashed build's folder from a running one's.
  const temp = await fs.promises.mkdtemp(path.join(parent, `${TEMP_PREFIX}${process.pid}-`));
  try {
    const root = path.join(temp, 'context');
    fs.mkdirSync(root, { mode: 0o755 });
    const dockerfileText = await unpackContext(src, root);
    return new Context(root, temp, dockerfileText, opts);
  } catch (err) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A temp folder of this build in `tempParent` (heredoc scripts, secrets, downloads), named as the unpacked
 * contexts are so that `removeStaleContexts` sweeps it after a killed build.
 */
export async function makeBuildTemp(tempParent: string, label: string): Promise<string> {
  await fs.promises.mkdir(tempParent, { recursive: true, mode: 0o700 });
  return fs.promises.mkdtemp(path.join(tempParent, `${TEMP_PREFIX}${process.pid}-${label}-`));
}

/**
 * Removes the unpacked tar contexts that builds killed mid-way left in `tempParent` (their process is
 * gone); folders of builds still running are kept. For the engine to call before a build. Returns the
 * names removed.
 */
export async function removeStaleContexts(tempParent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(tempParent);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = new RegExp(`^${TEMP_PREFIX}(\\d+)-`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await fs.promises.rm(path.join(tempParent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function contextDir(dir: string): Promise<string> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError('file', dir, 'give the build context as an existing directory, or "-" to read a tar from stdin', { cause: err });
    }
    throw err;
  }
  if (!st.isDirectory()) {
    throw new InvalidArgumentError('build context', `${dir} is not a directory`, 'give a directory, or "-" to read a tar (or a Dockerfile) from stdin');
  }
  return fs.promises.realpath(dir);
}

class Context implements BuildContext {
  private readonly ignore: DockerIgnore | undefined;
  private readonly sources: SourceResolver;
  private readonly hasher = new EntryHasher();
  private closed = false;

  constructor(readonly root: string, private readonly temp: string | undefined, private readonly stdinDockerfile: string | undefined,
    private readonly opts: OpenContextOptions) {
    this.ignore = opts.ignore === false ? undefined : this.loadIgnore();
    this.sources = new SourceResolver(root, { ignore: this.ignore, links: 'context' });
  }

  /** BuildKit prefers `<Dockerfile>.dockerignore` beside the Dockerfile, then the root's `.dockerignore`. */
  private loadIgnore(): DockerIgnore | undefined {
    const candidates = [...(this.opts.dockerfile ? [`${cleanPath(this.opts.dockerfile)}.dockerignore`] : []), '.dockerignore'];
    for (const name of candidates) {
      if (name.startsWith('../') || name.startsWith('/')) continue;
      let text: string;
      try {
        text = fs.readFileSync(path.join(this.root, new SourceResolver(this.root, { links: 'context' }).follow(name, name)), 'utf8');
      } catch (err) {
        if (err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      return parseDockerIgnore(text, name);
    }
    return undefined;
  }

  get filtered(): boolean {
    return this.ignore !== undefined;
  }

  isIgnored(p: string): boolean {
    return this.ignore?.ignores(p) ?? false;
  }

  async readDockerfile(name?: string): Promise<{ name: string; text: string }> {
    if (this.stdinDockerfile !== undefined) return { name: name ?? 'Dockerfile', text: this.stdinDockerfile };
    const wanted = name ?? this.opts.dockerfile;
    // Docker's default name falls back to lower case; a name given with -f does not.
    const names = wanted ? [wanted] : ['Dockerfile', 'dockerfile'];
    for (const n of names) {
      const rel = cleanPath(n.replace(/^\/+/, ''));
      if (rel === '..' || rel.startsWith('../')) {
        throw new InvalidArgumentError('Dockerfile', `"${n}" is outside the build context`, 'give the Dockerfile as a path inside the context, or pass its text');
      }
      let real: string;
      try {
        real = this.sources.follow(rel, n);
      } catch (err) {
        if (err instanceof NotFoundError && n !== names[names.length - 1]) continue;
        if (err instanceof NotFoundError) {
          throw new NotFoundError('file', `${n} in the build context ${this.temp ? '(tar)' : this.root}`, 'name the Dockerfile with -f, relative to the context', { cause: err });
        }
        throw err;
      }
      const st = fs.statSync(path.join(this.root, real));
      if (!st.isFile()) throw new InvalidArgumentError('Dockerfile', `"${n}" is not a regular file`, 'name the Dockerfile with -f, relative to the context');
      if (st.size > DOCKERFILE_MAX) throw new InvalidArgumentError('Dockerfile', `"${n}" is ${st.size} bytes, more than a Dockerfile can be`, 'check the -f path');
      return { name: real, text: await fs.promises.readFile(path.join(this.root, real), 'utf8') };
    }
    throw new Error('unreachable');
  }

  resolve(source: string): Promise<ContextEntry[]> {
    return this.sources.resolve(source);
  }

  hash(entries: readonly ContextEntry[]): Promise<string> {
    return this.hasher.hash(entries);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.temp) await fs.promises.rm(this.temp, { recursive: true, force: true });
  }
}
