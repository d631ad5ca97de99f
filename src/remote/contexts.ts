/**
 * Contexts, stored as Docker stores them: `$XDG_CONFIG_HOME/berth/contexts/meta/<sha256 of name>/meta.json`
 * (default ~/.config/berth, beside auth.json), holding `{Name, Metadata: {Description}, Endpoints: {docker:
 * {Host, SkipTLSVerify}}}`; the current one in `berth/cli.json` (`currentContext`, Docker's config.json
 * key). `default` is the local engine: always there, never stored, never removed. Export and import use
 * Docker's tar (meta.json at the top, tls/ beside it): `docker context import` reads Berth's, and back.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { closeMaster } from './mux.js';
import { ensureDir, ownedTempName, readJsonIfExists, writeJsonAtomic } from '../util/fs.js';
import { SSH_ENV } from './dial.js';
import { parseHost } from './uri.js';

export const DEFAULT_CONTEXT = 'default';
/** Docker's rule (cli/context/store): a letter or digit first, then letters, digits, _ . + - */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$/;
/** A meta.json or an exported tar larger than this is not a context. */
const META_LIMIT = 1 << 20;

export interface ContextInfo {
  name: string;
  description: string;
  /** the host URI; '' for `default` (the local engine) */
  host: string;
  current: boolean;
}

/** What a machine's context adds to its ssh:// host (Docker keeps no ssh settings in contexts; it ignores these). */
export interface ContextSsh {
  /** the key file to log in with */
  Identity?: string;
  /** the remote berth's path, when it is not on the remote user's PATH */
  Berth?: string;
  /** the remote berth's root, when it is not the remote user's default */
  Root?: string;
}

interface Meta {
  Name: string;
  Metadata?: { Description?: string; BerthSsh?: ContextSsh };
  Endpoints: { docker?: { Host?: string; SkipTLSVerify?: boolean } };
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config'), 'berth');
}

export function checkContextName(name: string): void {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError('context name', `"${name}" is not a valid context name`, 'use a letter or digit first, then letters, digits, "_", ".", "+" or "-" (at least two characters)');
  }
}

function metaOf(name: string, host: string, description: string, ssh?: ContextSsh): Meta {
  return { Name: name, Metadata: { Description: description, ...(ssh ? { BerthSsh: ssh } : {}) }, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } };
}

/** A meta.json read from disk or from a tar: its host checked, its name given. */
function checkMeta(raw: unknown, where: string): Meta {
  const m = raw as Meta | null;
  const host = m?.Endpoints?.docker?.Host;
  if (!m || typeof m !== 'object' || typeof host !== 'string') {
    throw new InvalidArgumentError('context', `${where} has no Endpoints.docker.Host`, 'export the context again with "berth context export" (or "docker context export")');
  }
  parseHost(host);
  return m;
}

export class ContextStore {
  readonly dir: string;
  private readonly metaDir: string;
  private readonly cliFile: string;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {
    this.dir = path.join(configDir(env), 'contexts');
    this.metaDir = path.join(this.dir, 'meta');
    this.cliFile = path.join(configDir(env), 'cli.json');
  }

  private folder(name: string): string {
    return path.join(this.metaDir, createHash('sha256').update(name).digest('hex'));
  }

  private async read(name: string): Promise<Meta | undefined> {
    const m = await readJsonIfExists<unknown>(path.join(this.folder(name), 'meta.json'));
    return m === undefined ? undefined : checkMeta(m, `the context "${name}"`);
  }

  async current(): Promise<string> {
    const cli = await readJsonIfExists<{ currentContext?: string }>(this.cliFile);
    return cli?.currentContext || DEFAULT_CONTEXT;
  }

  /** The context's host ('' for default); NotFound when it does not exist. */
  async host(name: string): Promise<string> {
    if (name === DEFAULT_CONTEXT) return '';
    const m = await this.read(name);
    if (!m) throw new NotFoundError('context', name);
    return m.Endpoints.docker!.Host!;
  }

  /** The ssh settings the context adds to its host, as the environment variables dial.ts reads (all keys, unset ones undefined). */
  async sshEnv(name: string): Promise<Record<string, string | undefined>> {
    const ssh = name === DEFAULT_CONTEXT ? undefined : (await this.read(name))?.Metadata?.BerthSsh;
    return { [SSH_ENV.identity]: ssh?.Identity, [SSH_ENV.berth]: ssh?.Berth, [SSH_ENV.root]: ssh?.Root };
  }

  async create(name: string, opts: { host: string; description?: string; ssh?: ContextSsh }): Promise<void> {
    checkContextName(name);
    if (opts.ssh && parseHost(opts.host).kind !== 'ssh') throw new InvalidArgumentError('context', `ssh settings given for "${opts.host}", which is not an ssh:// host`);
    parseHost(opts.host);
    await this.write(metaOf(name, opts.host, opts.description ?? '', opts.ssh));
  }

  /** All or nothing: the folder is made under a temp name and renamed into place, which fails if it exists. */
  private async write(meta: Meta): Promise<void> {
    const name = meta.Name;
    if (name === DEFAULT_CONTEXT || (await this.read(name).catch(() => undefined))) throw new AlreadyExistsError('context', name, 'pick another name, or remove the existing context first ("berth context rm")');
    await ensureDir(this.metaDir);
    const tmp = path.join(this.metaDir, ownedTempName('.tmp-ctx'));
    await ensureDir(tmp);
    try {
      await writeJsonAtomic(path.join(tmp, 'meta.json'), meta);
      await fsp.rename(tmp, this.folder(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new AlreadyExistsError('context', name);
        throw err;
      });
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  async list(): Promise<ContextInfo[]> {
    const current = await this.current();
    const out: ContextInfo[] = [{ name: DEFAULT_CONTEXT, description: 'The local engine (this machine\'s store)', host: '', current: current === DEFAULT_CONTEXT }];
    const dirs = await fsp.readdir(this.metaDir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    const stored: ContextInfo[] = [];
    for (const d of dirs) {
      if (d.startsWith('.')) continue;
      const m = await readJsonIfExists<Meta>(path.join(this.metaDir, d, 'meta.json')).catch(() => undefined);
      if (!m?.Name) continue;
      stored.push({ name: m.Name, description: m.Metadata?.Description ?? '', host: m.Endpoints?.docker?.Host ?? '', current: current === m.Name });
    }
    return [...out, ...stored.sort((a, b) => a.name.localeCompare(b.name))];
  }

  /** Docker's inspect shape, with where it is stored. */
  async inspect(name: string): Promise<Record<string, unknown>> {
    if (name === DEFAULT_CONTEXT) {
      return { Name: DEFAULT_CONTEXT, Metadata: { Description: 'The local engine' }, Endpoints: { docker: { Host: '', SkipTLSVerify: false } }, TLSMaterial: {}, Storage: { MetadataPath: '<IN MEMORY>', TLSPath: '<IN MEMORY>' } };
    }
    const m = await this.read(name);
    if (!m) throw new NotFoundError('context', name);
    return { ...m, TLSMaterial: {}, Storage: { MetadataPath: this.folder(name), TLSPath: path.join(this.dir, 'tls', path.basename(this.folder(name))) } };
  }

  async use(name: string): Promise<void> {
    if (name !== DEFAULT_CONTEXT) await this.host(name);
    await ensureDir(configDir(this.env));
    const cli = (await readJsonIfExists<Record<string, unknown>>(this.cliFile)) ?? {};
    if (name === DEFAULT_CONTEXT) delete cli.currentContext;
    else cli.currentContext = name;
    await writeJsonAtomic(this.cliFile, cli);
  }

  /**
   * Refuses `default`, and the current context unless `force` (which then makes `default` current). An ssh
   * host's shared connection (src/remote/mux.ts) is closed with it: nothing of the context stays running.
   */
  async remove(name: string, opts: { force?: boolean } = {}): Promise<void> {
    if (name === DEFAULT_CONTEXT) throw new BadStateError('the default context cannot be removed', 'it is the local engine; remove the others by name');
    const host = await this.host(name);
    if ((await this.current()) === name) {
      if (!opts.force) throw new BadStateError(`context "${name}" is in use`, 'switch with "berth context use default" first, or give -f to remove it anyway');
      await this.use(DEFAULT_CONTEXT);
    }
    await fsp.rm(this.folder(name), { recursive: true, force: true });
    const target = parseHost(host);
    if (target.kind === 'ssh') closeMaster(target, this.env);
  }

  /** Docker's export: a tar with meta.json (and no tls/: Berth's endpoints carry no TLS material yet). */
  async export(name: string, out: string | Writable): Promise<void> {
    if (name === DEFAULT_CONTEXT) throw new InvalidArgumentError('context', 'the default context is this machine\'s engine and cannot be exported', 'export a context made with "berth context create"');
    const m = await this.read(name);
    if (!m) throw new NotFoundError('context', name);
    // Loaded here: every command resolves its engine through this module, and only these two need tar.
    const { default: tar } = await import('tar-stream');
    const pack = tar.pack();
    const body = Buffer.from(JSON.stringify(m));
    pack.entry({ name: 'meta.json', size: body.length, mode: 0o644, mtime: new Date(0) }, body);
    pack.finalize();
    if (typeof out !== 'string') return pipeline(pack, out, { end: false });
    const tmp = path.join(path.dirname(path.resolve(out)), ownedTempName(`.tmp-${path.basename(out)}`));
    try {
      await pipeline(pack, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      await fsp.rename(tmp, out);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** A tar made by `export` (Berth's or Docker's), stored under `name` (the name inside it is not used). */
  async import(name: string, input: string | Readable): Promise<void> {
    checkContextName(name);
    if (name === DEFAULT_CONTEXT || (await this.read(name).catch(() => undefined))) throw new AlreadyExistsError('context', name);
    const src = typeof input === 'string' ? createReadStream(input) : input;
    const where = typeof input === 'string' ? input : 'the input';
    let meta: unknown;
    let tls = false;
    const { default: tar } = await import('tar-stream');
    const extract = tar.extract();
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (data: unknown) => { const c = data as Buffer; size += c.length; if (size <= META_LIMIT) chunks.push(c); });
      stream.on('end', () => {
        const p = header.name.replace(/^\.\//, '');
        if (p === 'meta.json') {
          if (size > META_LIMIT) return next(new InvalidArgumentError('context', `${where}: meta.json is larger than ${META_LIMIT} bytes`));
          try {
            meta = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return next(new InvalidArgumentError('context', `${where}: meta.json is not JSON`));
          }
        } else if (p.startsWith('tls/') && header.type === 'file') {
          tls = true;
        }
        next();
      });
    });
    try {
      await pipeline(src, extract);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err;
      throw new InvalidArgumentError('context', `${where} is not a context export (a tar with meta.json): ${(err as Error).message}`, 'make one with "berth context export NAME FILE"', { cause: err });
    }
    if (meta === undefined) throw new InvalidArgumentError('context', `${where} has no meta.json`, 'make one with "berth context export NAME FILE"');
    if (tls) throw new InvalidArgumentError('context', `${where} carries TLS material, which Berth's contexts do not use yet`, 'import a context without TLS, or use ssh://');
    const m = checkMeta(meta, where);
    await this.write({ ...m, Name: name });
  }
}

/**
 * Which engine a command talks to, in Docker's order: -H, then --context, then BERTH_HOST, then
 * BERTH_CONTEXT, then the current context. `host` undefined is the local engine; `source` says which
 * setting chose it (for errors that must name it).
 */
export async function resolveEngineHost(opts: { host?: string; context?: string }, env: NodeJS.ProcessEnv = process.env): Promise<{ host?: string; context: string; source: string; sshEnv?: Record<string, string | undefined> }> {
  if (opts.host && opts.context) throw new InvalidArgumentError('--context', 'conflicting options: either specify --host or --context, not both', 'give one of them');
  if (opts.host) return { host: opts.host, context: DEFAULT_CONTEXT, source: '-H/--host' };
  const store = new ContextStore(env);
  const named = async (name: string, source: string) => {
    checkContextName(name === DEFAULT_CONTEXT ? 'default' : name);
    const host = await store.host(name);
    // A context's ssh settings replace those of the environment (a `machine env` of another machine).
    return { ...(host ? { host, sshEnv: await store.sshEnv(name) } : {}), context: name, source };
  };
  if (opts.context) return named(opts.context, '--context');
  if (env.BERTH_HOST) return { host: env.BERTH_HOST, context: DEFAULT_CONTEXT, source: 'BERTH_HOST' };
  if (env.BERTH_CONTEXT) return named(env.BERTH_CONTEXT, 'BERTH_CONTEXT');
  const current = await store.current();
  // A current context removed by hand is an error, as Docker's: silently going local would act on the wrong engine.
  return named(current, `the current context (${path.join(configDir(env), 'cli.json')})`);
}

