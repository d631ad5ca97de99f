/**
 * Registries: the OCI distribution protocol (Docker Registry HTTP API v2), spoken by Berth itself.
 *
 * Layers, each behind the interface below:
 *   names.ts        a reference → where it lives (registry host, repository path, tag/digest); short names,
 *                   the `library/` namespace, mirrors and insecure registries from the engine's config file
 *   transport.ts    HTTP(S) to one registry host: TLS against the system CAs + certs.d, plain HTTP only for
 *                   127.0.0.0/8 and configured insecure registries, proxies from the environment, time-outs,
 *                   body size caps
 *   auth.ts         the WWW-Authenticate challenge flow (anonymous, Bearer tokens with pull/push scopes, Basic)
 *   credentials.ts  logins: Berth's auth file (Docker's config.json `auths` shape, mode 0600), read-through
 *                   of Docker's own config.json, credential helpers (`docker-credential-*` protocol)
 *   client.ts       RegistrySession: the protocol's verbs on one repository
 *   pull.ts/push.ts images between a registry and the image store, with progress events
 *
 * Nothing here writes image records: pull hands verified blobs and manifests to the image store, which
 * records them as `load` does (lease, verify, record last).
 */
import type { Readable } from 'node:stream';
import type { Digest, ImageId } from '../ids.js';

/** A reference resolved to its registry: `docker.io/library/busybox:latest` → these parts. */
export interface RemoteReference {
  /** registry host[:port] as named, e.g. `docker.io`, `127.0.0.1:5000` */
  registry: string;
  /** repository path inside the registry, e.g. `library/busybox` */
  repository: string;
  tag?: string;
  digest?: Digest;
  /** the name images are stored under: `registry/repository`, e.g. `docker.io/library/busybox` */
  name: string;
}

/** The registries part of the engine's configuration file (src/config), with defaults applied. */
export interface RegistriesConfig {
  /** where a short name (`busybox`) is looked for, in order; default `["docker.io"]` */
  unqualifiedSearch: string[];
  /** pull-only mirrors per registry host, tried in order before the registry itself */
  mirrors: Record<string, string[]>;
  /** hosts (`host[:port]`) or CIDRs that may be spoken to over plain HTTP or with an unverified certificate */
  insecure: string[];
  /** directories holding `HOST[:PORT]/ca.crt` (and `client.cert`/`client.key`), searched in order */
  certsDirs: string[];
}

/** A login. `identityToken` is an OAuth2 refresh token some registries hand out instead of a password. */
export interface RegistryCredentials {
  username: string;
  password: string;
  identityToken?: string;
}

/** Where logins are kept and found. */
export interface CredentialStore {
  get(registry: string): Promise<RegistryCredentials | undefined>;
  /** may return where the login went (e.g. a helper's name) */
  store(registry: string, creds: RegistryCredentials): Promise<unknown>;
  /** false when there was no login to remove */
  erase(registry: string): Promise<boolean>;
}

export type RepositoryAction = 'pull' | 'push';

export interface SessionOptions {
  /** pull, or pull and push: the scopes a bearer token is asked for */
  actions: RepositoryAction[];
  /** false: accept any certificate and allow plain HTTP (`--tls-verify=false`) */
  tlsVerify?: boolean;
  signal?: AbortSignal;
  /** use this login instead of the credential store's (login checks it before storing it) */
  credentials?: RegistryCredentials;
  /** connect and idle time-outs in ms (default 30 s / 60 s); tests shorten them */
  timeouts?: { connectMs?: number; idleMs?: number };
  /** retries of GET/HEAD after a reset, 5xx or 429 (default 2) */
  retries?: number;
  /** where HTTP(S)_PROXY/NO_PROXY are read (default process.env) */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A manifest or index as the registry sent it, checked against its digest. */
export interface FetchedManifest {
  mediaType: string;
  digest: Digest;
  bytes: Buffer;
}

/**
 * The protocol's verbs on one repository of one registry. Every call handles the auth challenge itself,
 * retries what is safe to retry, and throws RegistryError naming the registry and repository.
 */
export interface RegistrySession {
  readonly registry: string;
  readonly repository: string;
  /** GET /v2/ with the session's credentials: a login check. */
  ping(): Promise<void>;
  /** GET a manifest by tag or digest, `accept`ing these media types; at most 4 MiB; verified when `ref` is a digest. */
  manifest(ref: string, accept: readonly string[]): Promise<FetchedManifest>;
  /** HEAD a manifest: its digest and media type, or undefined when the registry does not have it. */
  headManifest(ref: string, accept: readonly string[]): Promise<{ digest: Digest; mediaType: string; size: number } | undefined>;
  /**
   * GET a blob from byte `offset` on (HTTP Range); follows redirects. The caller verifies the digest.
   * `size` is the blob's whole size (not what is left after `offset`) when the registry says it.
   */
  blob(digest: Digest, opts?: { offset?: number }): Promise<{ stream: Readable; size: number | undefined }>;
  /** HEAD a blob: its size, or undefined when the registry does not have it. */
  blobSize(digest: Digest): Promise<number | undefined>;
  /** Cross-repository mount of `digest` from `from` (same registry); false when the registry would not. */
  mountBlob(digest: Digest, from: string): Promise<boolean>;
  /** Uploads a blob (monolithic, or chunked for large ones); `open` may be called again to restart. */
  uploadBlob(digest: Digest, size: number, open: () => Readable, onProgress?: (sent: number) => void): Promise<void>;
  /** PUT a manifest under a tag or its digest; returns the digest the registry reports. */
  putManifest(ref: string, mediaType: string, bytes: Buffer): Promise<Digest>;
  /** GET /v2/NAME/tags/list, every page. */
  tags(): Promise<string[]>;
  /** Drops the session's pooled connections (idle ones never keep the process alive). */
  close(): void;
}

export type { SessionDeps } from './client.js';

/** Manifests and indexes larger than this are refused (containers/image's limit too). */
export const MANIFEST_CAP = 4 * 1024 * 1024;

/**
 * Opens a session on `ref.repository` of `ref.registry` (client.ts). The protocol code, and node:https
 * with it, loads on the first session: most commands never speak to a registry.
 */
export async function openSession(ref: { registry: string; repository: string }, opts: SessionOptions,
  deps: import('./client.js').SessionDeps): Promise<RegistrySession> {
  return (await import('./client.js')).openSession(ref, opts, deps);
}
export { resolveReference, candidateReferences, isShortName, normalizeRegistry, formatReference, registriesConfig, pullSources, DOCKER_HUB, DEFAULT_REGISTRIES_CONFIG,
  type RegistryConfigKeys } from './names.js';

/** Progress of a pull or push, in the order things happen; `layer` events carry the short blob digest as `id`. */
export type TransferEvent =
  | { type: 'resolving'; reference: string; registry: string }
  | { type: 'manifest'; reference: string; digest: Digest; layers: number }
  | {
      type: 'layer';
      id: string;
      status: 'waiting' | 'exists' | 'downloading' | 'verifying' | 'downloaded' | 'extracting' | 'complete' | 'mounted' | 'uploading' | 'pushed' | 'retrying';
      current?: number;
      total?: number;
      /** `mounted`: the repository the blob was mounted from */
      from?: string;
    }
  | { type: 'done'; reference: string; id: ImageId; digest: Digest; changed: boolean };

export interface PullOptions {
  /** `os/arch[/variant]`; default this machine's */
  platform?: string;
  /** every tag of the repository (`pull --all-tags`) */
  allTags?: boolean;
  tlsVerify?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: TransferEvent) => void;
  /** this login instead of the credential store's (the Engine API's X-Registry-Auth header) */
  credentials?: RegistryCredentials;
}

export interface PullResult {
  /** the stored name:tag (or name@digest) */
  reference: string;
  id: ImageId;
  /** manifest digest, as `docker pull` prints it */
  digest: Digest;
  /** false when the store already held this manifest */
  changed: boolean;
}

export interface PushOptions {
  tlsVerify?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: TransferEvent) => void;
  /** this login instead of the credential store's (the Engine API's X-Registry-Auth header) */
  credentials?: RegistryCredentials;
}

export interface PushResult {
  reference: string;
  digest: Digest;
  size: number;
}

export { pullImage } from './pull.js';
export { pushImage } from './push.js';
export type { RegistryAccess } from './transfer.js';
export { openRegistryAccess } from './access.js';
export { createCredentialStore, defaultAuthFile, forgetLogin, loginRegistry, type CredentialStoreOptions } from './credentials.js';
