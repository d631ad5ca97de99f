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
import { tlsFilesOf, type TlsFiles, type TlsFlags } from './tls.js';
import { parseHost } from './uri.js';

export const DEFAULT_CONTEXT = 'default';
/** Docker's rule (cli/context/store): a letter or digit first, then letters, digits, _ . + - */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$/;
/** A meta.json or an exported tar larger than this is not a context. */
const META_LIMIT = 1 << 20;
/** Docker's names for an endpoint's TLS files (contexts/tls/<hash>/docker/, and tls/docker/ in an export). */
const TLS_FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;
type TlsMaterial = Partial<Record<(typeof TLS_FILES)[number], Buffer>>;

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

  /** Where Docker keeps a context's TLS files: beside meta/, under the same hash. */
  private tlsFolder(name: string): string {
    return path.join(this.dir, 'tls', path.basename(this.folder(name)), 'docker');
  }

  private async tlsMaterial(name: string): Promise<TlsMaterial> {
    const out: TlsMaterial = {};
    for (const f of TLS_FILES) {
      const data = await fsp.readFile(path.join(this.tlsFolder(name), f)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
      if (data) out[f] = data;
    }
    return out;
  }

  /** The context's TLS files, when it has any (then its tcp:// host is spoken to over TLS, as Docker's). */
  async tls(name: string): Promise<TlsFiles | undefined> {
    if (name === DEFAULT_CONTEXT) return undefined;
    const m = await this.read(name);
    if (!m) throw new NotFoundError('context', name);
    const have = Object.keys(await this.tlsMaterial(name)) as (typeof TLS_FILES)[number][];
    if (!have.length) return undefined;
    const file = (f: (typeof TLS_FILES)[number]) => (have.includes(f) ? path.join(this.tlsFolder(name), f) : undefined);
    return { verify: !m.Endpoints.docker?.SkipTLSVerify, ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
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

  /** `tls`: the CA, certificate and key files of a tcp:// host, copied into the context (as Docker's `ca=,cert=,key=`). */
  async create(name: string, opts: { host: string; description?: string; ssh?: ContextSsh; tls?: { ca?: string; cert?: string; key?: string } }): Promise<void> {
    checkContextName(name);
    if (opts.ssh && parseHost(opts.host).kind !== 'ssh') throw new InvalidArgumentError('context', `ssh settings given for "${opts.host}", which is not an ssh:// host`);
    const kind = parseHost(opts.host).kind;
    const material: TlsMaterial = {};
    const given = [['ca.pem', ['--tlscacert', opts.tls?.ca]], ['cert.pem', ['--tlscert', opts.tls?.cert]], ['key.pem', ['--tlskey', opts.tls?.key]]] as const;
    for (const [file, [flag, from]] of given) {
      if (from === undefined) continue;
      if (kind !== 'tcp') throw new InvalidArgumentError(flag, `TLS files apply to tcp:// hosts, not to ${opts.host}`, 'drop the TLS options, or give a tcp://HOST:PORT host');
      material[file] = await fsp.readFile(from).catch((err: NodeJS.ErrnoException) => {
        throw new InvalidArgumentError(flag, `cannot read ${from}: ${err.code ?? err.message}`, 'give the PEM file\'s path');
      });
    }
    if (!!material['cert.pem'] !== !!material['key.pem']) throw new InvalidArgumentError(material['cert.pem'] ? '--tlskey' : '--tlscert', 'a client certificate needs its key, and the key its certificate', 'give both --tlscert and --tlskey');
    await this.write(metaOf(name, opts.host, opts.description ?? '', opts.ssh), material);
  }

  /** All or nothing: the folder is made under a temp name and renamed into place, which fails if it exists. */
  private async write(meta: Meta, material: TlsMaterial = {}): Promise<void> {
    const name = meta.Name;
    if (name === DEFAULT_CONTEXT || (await this.read(name).catch(() => undefined))) throw new AlreadyExistsError('context', name, 'pick another name, or remove the existing context first ("berth context rm")');
    await ensureDir(this.metaDir);
    const tmp = path.join(this.metaDir, ownedTempName('.tmp-ctx'));
    await ensureDir(tmp);
    // The TLS files land first (a key is 0600): a context is visible only once its meta.json is in place.
    const tlsTmp = path.join(this.dir, 'tls', ownedTempName('.tmp-tls'));
    const hasTls = Object.keys(material).length > 0;
    let tlsPlaced = false;
    try {
      if (hasTls) {
        await ensureDir(path.join(tlsTmp, 'docker'));
        for (const [f, data] of Object.entries(material)) await fsp.writeFile(path.join(tlsTmp, 'docker', f), data, { mode: 0o600 });
        await fsp.rm(path.dirname(this.tlsFolder(name)), { recursive: true, force: true });
        await fsp.rename(tlsTmp, path.dirname(this.tlsFolder(name)));
        tlsPlaced = true;
      }
      await writeJsonAtomic(path.join(tmp, 'meta.json'), meta);
      await fsp.rename(tmp, this.folder(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new AlreadyExistsError('context', name);
        throw err;
      });
    } catch (err) {
      if (tlsPlaced) await fsp.rm(path.dirname(this.tlsFolder(name)), { recursive: true, force: true });
      throw err;
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
      if (hasTls) await fsp.rm(tlsTmp, { recursive: true, force: true });
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
    const files = Object.keys(await this.tlsMaterial(name));
    return { ...m, TLSMaterial: files.length ? { docker: files } : {}, Storage: { MetadataPath: this.folder(name), TLSPath: path.join(this.dir, 'tls', path.basename(this.folder(name))) } };
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
    await fsp.rm(path.dirname(this.tlsFolder(name)), { recursive: true, force: true });
    const target = parseHost(host);
    if (target.kind === 'ssh') closeMaster(target, this.env);
  }

  /** Docker's export: a tar with meta.json, and tls/docker/{ca,cert,key}.pem when the context has them. */
  async export(name: string, out: string | Writable): Promise<void> {
    if (name === DEFAULT_CONTEXT) throw new InvalidArgumentError('context', 'the default context is this machine\'s engine and cannot be exported', 'export a context made with "berth context create"');
    const m = await this.read(name);
    if (!m) throw new NotFoundError('context', name);
    // Loaded here: every command resolves its engine through this module, and only these two need tar.
    const { default: tar } = await import('tar-stream');
    const pack = tar.pack();
    const body = Buffer.from(JSON.stringify(m));
    pack.entry({ name: 'meta.json', size: body.length, mode: 0o644, mtime: new Date(0) }, body);
    for (const [f, data] of Object.entries(await this.tlsMaterial(name))) pack.entry({ name: `tls/docker/${f}`, size: data.length, mode: 0o600, mtime: new Date(0) }, data);
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
    const material: TlsMaterial = {};
    let other: string | undefined;
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
          const f = /^tls\/docker\/(ca|cert|key)\.pem$/.exec(p);
          if (!f || size > META_LIMIT) other ??= p;
          else material[`${f[1] as 'ca' | 'cert' | 'key'}.pem`] = Buffer.concat(chunks);
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
    // Docker keeps TLS for other endpoints (kubernetes) beside docker/: Berth has only the docker endpoint.
    if (other) throw new InvalidArgumentError('context', `${where} carries TLS material Berth has no use for (${other})`, 'export a context whose TLS files are tls/docker/ca.pem, cert.pem and key.pem');
    const m = checkMeta(meta, where);
    if (Object.keys(material).length && parseHost(m.Endpoints.docker!.Host!).kind !== 'tcp') throw new InvalidArgumentError('context', `${where} carries TLS files for ${m.Endpoints.docker!.Host}, which is not a tcp:// host`);
    await this.write({ ...m, Name: name }, material);
  }
}

/**
 * Which engine a command talks to, in Docker's order: -H, then --context, then BERTH_HOST, then
 * BERTH_CONTEXT, then the current context. `host` undefined is the local engine; `source` says which
 * setting chose it (for errors that must name it).
 */
export async function resolveEngineHost(opts: { host?: string; context?: string; tls?: TlsFlags }, env: NodeJS.ProcessEnv = process.env): Promise<{ host?: string; context: string; source: string; sshEnv?: Record<string, string | undefined>; tls?: TlsFiles }> {
  if (opts.host && opts.context) throw new InvalidArgumentError('--context', 'conflicting options: either specify --host or --context, not both', 'give one of them');
  // Docker's: the TLS flags and BERTH_TLS_VERIFY/BERTH_CERT_PATH go with -H and BERTH_HOST; a context has its own.
  const byFlags = (host: string) => {
    const files = tlsFilesOf(opts.tls ?? {}, env, configDir(env));
    if (!files) return {};
    // BERTH_TLS_VERIFY set for the shell does not break a unix:// or ssh:// host; flags given for one do (RemoteEngine says so).
    return opts.tls || parseHost(host).kind === 'tcp' ? { tls: files } : {};
  };
  if (opts.host) return { host: opts.host, context: DEFAULT_CONTEXT, source: '-H/--host', ...byFlags(opts.host) };
  const store = new ContextStore(env);
  const named = async (name: string, source: string) => {
    checkContextName(name === DEFAULT_CONTEXT ? 'default' : name);
    const host = await store.host(name);
    // A context's ssh settings replace those of the environment (a `machine env` of another machine).
    const tls = host ? await store.tls(name) : undefined;
    return { ...(host ? { host, sshEnv: await store.sshEnv(name) } : {}), ...(tls ? { tls } : {}), context: name, source };
  };
  if (opts.context) return named(opts.context, '--context');
  if (env.BERTH_HOST) return { host: env.BERTH_HOST, context: DEFAULT_CONTEXT, source: 'BERTH_HOST', ...byFlags(env.BERTH_HOST) };
  if (env.BERTH_CONTEXT) return named(env.BERTH_CONTEXT, 'BERTH_CONTEXT');
  const current = await store.current();
  // A current context removed by hand is an error, as Docker's: silently going local would act on the wrong engine.
  return named(current, `the current context (${path.join(configDir(env), 'cli.json')})`);
}

