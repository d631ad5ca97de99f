/**
 * The RegistryAccess that pull and push use, over names.ts (references, short names) and client.ts
 * (sessions): mirrors of a registry are tried before it for pulls, never for pushes.
 */
import type { CredentialStore, RegistriesConfig, RegistrySession } from './index.js';
import { openSession } from './client.js';
import { DEFAULT_REGISTRIES_CONFIG, candidateReferences } from './names.js';
import type { RegistryAccess } from './transfer.js';

export interface AccessOptions {
  /** the engine configuration's registries part, defaults applied */
  config?: RegistriesConfig;
  /** logins; none (anonymous) when left out */
  credentials?: CredentialStore;
}

const NO_LOGINS: CredentialStore = {
  get: async () => undefined,
  store: async () => {},
  erase: async () => false,
};

export function openRegistryAccess(opts: AccessOptions = {}): RegistryAccess {
  const config = opts.config ?? DEFAULT_REGISTRIES_CONFIG;
  const deps = { config, credentials: opts.credentials ?? NO_LOGINS };
  return {
    // A short name goes to the first unqualified-search registry, as Docker sends it to docker.io.
    parse: (text) => candidateReferences(text, config)[0]!,
    candidates: (text) => candidateReferences(text, config),
    async pullSessions(ref, sessionOpts) {
      const sessions: RegistrySession[] = [];
      // A login given for this pull belongs to the registry named, never to its mirrors.
      const { credentials: _given, ...mirrorOpts } = sessionOpts;
      for (const mirror of config.mirrors[ref.registry] ?? []) sessions.push(await openSession({ registry: mirror, repository: ref.repository }, mirrorOpts, deps));
      sessions.push(await openSession(ref, sessionOpts, deps));
      return sessions;
    },
    session: (ref, sessionOpts) => openSession(ref, sessionOpts, deps),
  };
}
