/**
 * A reference → the registry and repository it lives in, normalized as Docker normalizes
 * (distribution/reference ParseNormalizedNamed): `busybox` → `docker.io/library/busybox`,
 * `index.docker.io/x/y` → `docker.io/x/y`. The grammar itself is src/image/reference.ts.
 */
import { InvalidArgumentError } from '../errors.js';
import { hasDomain, parseReference, type ImageReference } from '../image/reference.js';
import type { RegistriesConfig, RemoteReference } from './index.js';

export const DOCKER_HUB = 'docker.io';
/** The host docker.io's API answers on (Docker's DefaultV2Registry). */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
/** docker.io's key in config.json `auths`, as `docker login` writes it. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export const DEFAULT_REGISTRIES_CONFIG: RegistriesConfig = Object.freeze({
  unqualifiedSearch: [DOCKER_HUB],
  mirrors: {},
  insecure: [],
  certsDirs: ['/etc/berth/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d'],
}) as RegistriesConfig;

/**
 * A registry as a user or a config file may write it (`index.docker.io`, `https://index.docker.io/v1/`,
 * `http://127.0.0.1:5000/`, `Example.com:443`) → the host[:port] Berth names it by.
 */
export function normalizeRegistry(text: string): string {
  let host = text.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(host);
  if (scheme) host = host.slice(scheme[0].length);
  host = host.replace(/\/.*$/, '');
  if (host === '' || /[\s@]/.test(host)) {
    throw new InvalidArgumentError('registry', `"${text}" is not a registry host`, 'give HOST[:PORT], e.g. docker.io or 127.0.0.1:5000');
  }
  const lower = host.toLowerCase();
  if (lower === 'index.docker.io' || lower === DOCKER_HUB_ENDPOINT) return DOCKER_HUB;
  return lower;
}

function remote(registry: string, path: string, ref: ImageReference): RemoteReference {
  const repository = registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
  return {
    registry, repository, name: `${registry}/${repository}`,
    ...(ref.tag !== undefined && { tag: ref.tag }), ...(ref.digest && { digest: ref.digest }),
  };
}

/** A fully qualified reference, docker.io assumed for a name without a registry (Docker's rule). */
export function resolveReference(text: string): RemoteReference {
  const ref = parseReference(text);
  if (!hasDomain(ref.name)) return remote(DOCKER_HUB, ref.name, ref);
  const slash = ref.name.indexOf('/');
  return remote(normalizeRegistry(ref.name.slice(0, slash)), ref.name.slice(slash + 1), ref);
}

/** True when the reference names no registry (`busybox`, `library/busybox`): the search list applies. */
export function isShortName(text: string): boolean {
  return !hasDomain(parseReference(text).name);
}

/**
 * Where a reference may be pulled from, in order: a qualified name has one place; a short name one per
 * `unqualifiedSearch` registry (Podman's unqualified-search-registries). Local images (`localhost/NAME`)
 * come before all of these, and are the image store's to look up.
 */
export function candidateReferences(text: string, config: Pick<RegistriesConfig, 'unqualifiedSearch'>): RemoteReference[] {
  const ref = parseReference(text);
  if (hasDomain(ref.name)) return [resolveReference(text)];
  if (config.unqualifiedSearch.length === 0) {
    throw new InvalidArgumentError('reference', `"${text}" names no registry and no unqualified-search registries are configured`,
      'give the registry in the name (e.g. docker.io/library/busybox), or set "unqualified-search-registries" in the config file');
  }
  return config.unqualifiedSearch.map((r) => remote(normalizeRegistry(r), ref.name, ref));
}

/** The reference as Docker prints it: `name:tag`, `name@digest`, or `name:tag@digest`. */
export function formatReference(ref: RemoteReference): string {
  return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The host an API request for `registry` goes to (docker.io answers on registry-1.docker.io). */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

/** The key a registry's login is stored under in an auth file (Docker's for docker.io). */
export function authKey(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
}

/** Splits `host[:port]`, IPv6 brackets allowed. */
export function splitHostPort(registry: string): { hostname: string; port: number | undefined } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(registry);
  if (!m) return { hostname: registry, port: undefined };
  return { hostname: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : undefined };
}

/** The registry keys of the engine's config file (src/config), as written there. */
export interface RegistryConfigKeys {
  'insecure-registries'?: string[];
  'registry-mirrors'?: string[];
  'mirrors'?: Record<string, string[]>;
  'unqualified-search-registries'?: string[];
  'certs-dirs'?: string[];
}

function hostEntry(key: string, text: string): string {
  if (text.includes('://')) {
    throw new InvalidArgumentError(key, `"${text}" should not contain "://"`, 'give HOST[:PORT], e.g. registry.example.com:5000');
  }
  const host = normalizeRegistry(text);
  if (!/^(?:\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(?::\d{1,5})?$/.test(host) || host !== text.toLowerCase().replace(/^index\.docker\.io$|^registry-1\.docker\.io$/, 'docker.io')) {
    throw new InvalidArgumentError(key, `"${text}" is not HOST[:PORT]`, 'give HOST[:PORT], e.g. registry.example.com:5000');
  }
  return host;
}

/**
 * The config file's registry keys → RegistriesConfig, with defaults; throws InvalidArgumentError naming
 * the key and the entry that is wrong (Docker's rules: no scheme in insecure-registries, mirrors are
 * URLs without a path).
 */
export function registriesConfig(keys: RegistryConfigKeys): RegistriesConfig {
  const insecure = (keys['insecure-registries'] ?? []).map((entry) => {
    const slash = entry.indexOf('/');
    if (slash > 0 && !entry.includes('://')) {
      const base = entry.slice(0, slash);
      const bits = Number(entry.slice(slash + 1));
      const max = base.includes(':') ? 128 : 32;
      if (!/^[0-9a-fA-F.:]+$/.test(base) || !Number.isInteger(bits) || bits < 0 || bits > max || entry.slice(slash + 1) === '') {
        throw new InvalidArgumentError('insecure-registries', `"${entry}" is not a CIDR`, 'give HOST[:PORT] or a CIDR such as 10.0.0.0/8');
      }
      return entry.toLowerCase();
    }
    return hostEntry('insecure-registries', entry);
  });
  const mirrors: Record<string, string[]> = {};
  for (const [registry, list] of Object.entries(keys.mirrors ?? {})) {
    mirrors[hostEntry('mirrors', registry)] = list.map((m) => hostEntry(`mirrors of ${registry}`, m));
  }
  const hub = (keys['registry-mirrors'] ?? []).map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InvalidArgumentError('registry-mirrors', `"${text}" is not a URL`, 'give a URL such as https://mirror.example.com');
    }
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
      throw new InvalidArgumentError('registry-mirrors', `"${text}": a mirror is a scheme and host only (no path, query or login)`, 'give a URL such as https://mirror.example.com');
    }
    const host = normalizeRegistry(url.host);
    // Docker speaks to an http:// mirror in plain HTTP: that makes it an insecure registry.
    if (url.protocol === 'http:' && !insecure.includes(host)) insecure.push(host);
    return host;
  });
  if (hub.length) mirrors[DOCKER_HUB] = [...hub, ...(mirrors[DOCKER_HUB] ?? [])];
  return {
    unqualifiedSearch: keys['unqualified-search-registries']?.map((r) => hostEntry('unqualified-search-registries', r)) ?? [...DEFAULT_REGISTRIES_CONFIG.unqualifiedSearch],
    mirrors,
    insecure,
    certsDirs: keys['certs-dirs'] ?? [...DEFAULT_REGISTRIES_CONFIG.certsDirs],
  };
}

/** Where a pull from `registry` is tried, in order: its mirrors, then itself. */
export function pullSources(registry: string, config: Pick<RegistriesConfig, 'mirrors'>): string[] {
  return [...(config.mirrors[registry] ?? []), registry];
}
