/**
 * Where logins are kept. Berth's auth file has Docker's config.json shape
 * (`{"auths": {"HOST": {"auth": base64("user:pass")}}, "credHelpers": {...}, "credsStore": "..."}`),
 * written atomically with mode 0600. Docker's own config.json is read through (never written), so a
 * Docker user's `docker login` works in Berth. Credential helpers speak the docker-credential-helpers
 * protocol: `docker-credential-NAME get|store|erase`, the server URL or a JSON record on stdin.
 *
 * Lookup order for a registry, first hit wins: Berth's file (its helper for the registry, its credsStore,
 * its auths), then Docker's (credHelpers, credsStore, auths), as Docker orders its own.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, RuntimeError } from '../errors.js';
import { writeJsonAtomic } from '../util/fs.js';
import { spawn } from 'node:child_process';
import type { CredentialStore, RegistryCredentials } from './index.js';
import { authKey, DOCKER_HUB, normalizeRegistry } from './names.js';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [other: string]: unknown;
}

export interface CredentialStoreOptions {
  /** Berth's auth file (`--authfile`); default $BERTH_AUTH_FILE, $REGISTRY_AUTH_FILE, then ~/.config/berth/auth.json */
  authFile?: string;
  /** Docker's config.json, read only; default $DOCKER_CONFIG/config.json, then ~/.docker/config.json; null: none */
  dockerConfig?: string | null;
  /** the environment paths and helpers are found in (default process.env) */
  env?: Readonly<Record<string, string | undefined>>;
}

const HELPER_TIMEOUT = 30_000;
/** The helper protocol's answer for "no such login" (credentials.ErrCredentialsNotFound). */
const NOT_FOUND = /credentials not found/i;

export function defaultAuthFile(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.BERTH_AUTH_FILE) return env.BERTH_AUTH_FILE;
  if (env.REGISTRY_AUTH_FILE) return env.REGISTRY_AUTH_FILE;
  const home = env.HOME || os.homedir();
  return path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), 'berth', 'auth.json');
}

function defaultDockerConfig(env: Readonly<Record<string, string | undefined>>): string {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json');
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidArgumentError('auth file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'check the file\'s permissions');
  }
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as AuthFile;
  } catch {
    // The text may hold passwords: say where, never what.
    throw new InvalidArgumentError('auth file', `${file} is not a JSON object`, 'fix or remove the file, then log in again');
  }
}

/** The entry of `auths` that names `registry`, whatever spelling it was stored under. */
function findEntry(auths: Record<string, AuthEntry> | undefined, registry: string): [string, AuthEntry] | undefined {
  if (!auths) return undefined;
  const exact = authKey(registry);
  if (auths[exact]) return [exact, auths[exact]];
  for (const [key, entry] of Object.entries(auths)) {
    try {
      if (normalizeRegistry(key) === registry) return [key, entry];
    } catch { /* a key that is no registry name: not ours */ }
  }
  return undefined;
}

function decodeEntry(entry: AuthEntry, file: string, key: string): RegistryCredentials | undefined {
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidArgumentError('auth file', `the login for ${key} in ${file} is damaged`, `log in again with "berth login ${key}"`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (!username && !entry.identitytoken) return undefined; // Docker writes `{}` when a credsStore holds the secret
  return { username, password, ...(entry.identitytoken && { identityToken: entry.identitytoken }) };
}

function helperFor(file: AuthFile | undefined, registry: string): string | undefined {
  if (!file) return undefined;
  const helpers = file.credHelpers ?? {};
  for (const [key, name] of Object.entries(helpers)) {
    try {
      if (normalizeRegistry(key) === registry && name) return name;
    } catch { /* not a registry name */ }
  }
  return file.credsStore || undefined;
}

function checkHelperName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new InvalidArgumentError('credential helper', `"${name}" is not a helper name`, 'credHelpers and credsStore name a docker-credential-NAME program on PATH');
  }
  return `docker-credential-${name}`;
}

export class FileCredentialStore implements CredentialStore {
  readonly authFile: string;
  private readonly dockerConfig: string | undefined;
  private readonly env: Readonly<Record<string, string | undefined>>;

  constructor(opts: CredentialStoreOptions = {}) {
    this.env = opts.env ?? process.env;
    this.authFile = opts.authFile ?? defaultAuthFile(this.env);
    this.dockerConfig = opts.dockerConfig === null ? undefined : opts.dockerConfig ?? defaultDockerConfig(this.env);
  }

  async get(registry: string): Promise<RegistryCredentials | undefined> {
    registry = normalizeRegistry(registry);
    const files = [this.authFile, ...(this.dockerConfig && this.dockerConfig !== this.authFile ? [this.dockerConfig] : [])];
    for (const file of files) {
      const content = await readAuthFile(file);
      if (!content) continue;
      const helper = helperFor(content, registry);
      if (helper) {
        const found = await this.helperGet(helper, registry);
        if (found) return found;
      }
      const entry = findEntry(content.auths, registry);
      if (entry) {
        const creds = decodeEntry(entry[1], file, entry[0]);
        if (creds) return creds;
      }
    }
    return undefined;
  }

  /**
   * The registries this store names a login for (`auths` and `credHelpers` keys of both files), as the
   * docker CLI gathers every login for a build's X-Registry-Config. A key that is no registry is skipped.
   */
  async registries(): Promise<string[]> {
    const out = new Set<string>();
    for (const file of [this.authFile, ...(this.dockerConfig && this.dockerConfig !== this.authFile ? [this.dockerConfig] : [])]) {
      const content = await readAuthFile(file);
      for (const key of [...Object.keys(content?.auths ?? {}), ...Object.keys(content?.credHelpers ?? {})]) {
        try {
          out.add(normalizeRegistry(key));
        } catch { /* not a registry name */ }
      }
    }
    return [...out];
  }

  /** Keeps the login; returns the helper program when a helper took it (undefined: the auth file). */
  async store(registry: string, creds: RegistryCredentials): Promise<string | undefined> {
    registry = normalizeRegistry(registry);
    const content = (await readAuthFile(this.authFile)) ?? {};
    const helper = helperFor(content, registry);
    const key = authKey(registry);
    if (helper) {
      await this.helper(helper, 'store', JSON.stringify({
        ServerURL: key, Username: creds.identityToken ? '<token>' : creds.username, Secret: creds.identityToken ?? creds.password,
      }));
      return checkHelperName(helper);
    }
    const auths = { ...content.auths };
    const old = findEntry(auths, registry);
    if (old) delete auths[old[0]];
    auths[key] = {
      auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64'),
      ...(creds.identityToken && { identitytoken: creds.identityToken }),
    };
    await fsp.mkdir(path.dirname(this.authFile), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.authFile, { ...content, auths }, 0o600);
    return undefined;
  }

  async erase(registry: string): Promise<boolean> {
    registry = normalizeRegistry(registry);
    const content = await readAuthFile(this.authFile);
    if (!content) return false;
    const helper = helperFor(content, registry);
    let erased = false;
    if (helper) erased = await this.helperErase(helper, registry);
    const entry = findEntry(content.auths, registry);
    if (entry) {
      const auths = { ...content.auths };
      delete auths[entry[0]];
      await writeJsonAtomic(this.authFile, { ...content, auths }, 0o600);
      erased = true;
    }
    return erased;
  }

  private async helperGet(name: string, registry: string): Promise<RegistryCredentials | undefined> {
    const out = await this.helper(name, 'get', authKey(registry), true);
    if (out === undefined) return undefined;
    let parsed: { Username?: unknown; Secret?: unknown };
    try {
      parsed = JSON.parse(out) as typeof parsed;
    } catch {
      throw new RuntimeError(`credential helper docker-credential-${name} answered "get" with something that is not JSON`, 'check the helper');
    }
    if (typeof parsed.Secret !== 'string' || typeof parsed.Username !== 'string') return undefined;
    // The protocol's convention: user "<token>" means the secret is an identity (refresh) token.
    if (parsed.Username === '<token>') return { username: '', password: '', identityToken: parsed.Secret };
    return { username: parsed.Username, password: parsed.Secret };
  }

  private async helperErase(name: string, registry: string): Promise<boolean> {
    return (await this.helper(name, 'erase', authKey(registry), true)) !== undefined;
  }

  /**
   * Runs `docker-credential-NAME verb` with `input` on stdin; undefined when `notFoundOk` and the helper
   * says it has no such login. What the helper printed is never put in an error: it may be a secret.
   */
  private async helper(name: string, verb: 'get' | 'store' | 'erase', input: string, notFoundOk = false): Promise<string | undefined> {
    const program = checkHelperName(name);
    const env = Object.fromEntries(Object.entries(this.env).filter((e): e is [string, string] => e[1] !== undefined));
    const res = await runHelper(program, verb, input, env);
    if (res.code === 0) return res.stdout;
    // The protocol says "not found" on stdout with a failing exit (credentials.ErrCredentialsNotFound).
    if (notFoundOk && res.code !== undefined && NOT_FOUND.test(res.stdout + res.stderr)) return undefined;
    if (res.missing) {
      throw new RuntimeError(`credential helper ${program} is not installed`, `install it, or remove "${name}" from credHelpers/credsStore in the auth file`);
    }
    throw new RuntimeError(`credential helper ${program} ${verb} failed${res.timedOut ? ' (timed out)' : res.code !== undefined ? ` (exit ${res.code})` : ''}`,
      'run the helper by hand to see why; its output is not shown since it may hold secrets', { command: `${program} ${verb}` });
  }
}

/** util/exec's run() keeps stdout of a failed command to itself; the helper protocol answers there. */
function runHelper(program: string, verb: string, input: string, env: Record<string, string>):
  Promise<{ code: number | undefined; stdout: string; stderr: string; timedOut: boolean; missing: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(program, [verb], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, HELPER_TIMEOUT);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: undefined, stdout: '', stderr: '', timedOut: false, missing: e.code === 'ENOENT' });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? undefined, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, missing: false });
    });
    child.stdin.on('error', () => {}); // a helper that exits without reading its input
    child.stdin.end(input);
  });
}

export function createCredentialStore(opts: CredentialStoreOptions = {}): FileCredentialStore {
  return new FileCredentialStore(opts);
}

/** The registry a login names (default docker.io), once the login is checked to name a user and a password. */
export function loginRegistry(registryText: string | undefined, creds: { username: string; password: string }): string {
  const registry = normalizeRegistry(registryText ?? DOCKER_HUB);
  if (!creds.username) throw new InvalidArgumentError('username', 'the username is empty', 'give it with -u USER');
  if (!creds.password) throw new InvalidArgumentError('password', 'the password is empty', 'give it with --password-stdin');
  return registry;
}

/** `logout`: forgets the login this machine keeps for the registry; `key` is what Docker prints. */
export async function forgetLogin(registryText: string | undefined, opts: CredentialStoreOptions = {}): Promise<{ registry: string; key: string; removed: boolean }> {
  const registry = normalizeRegistry(registryText ?? DOCKER_HUB);
  return { registry, key: authKey(registry), removed: await createCredentialStore(opts).erase(registry) };
}
