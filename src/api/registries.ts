/**
 * engine.registries: logins. The registry layer does the protocol; this only picks the registry,
 * checks the login against it and keeps it.
 */
import type { RegistriesApi } from './types.js';
import { createCredentialStore } from '../registry/credentials.js';
import type { RegistriesConfig } from '../registry/index.js';
import { DOCKER_HUB, normalizeRegistry } from '../registry/names.js';
import { authKey } from '../registry/names.js';
import { InvalidArgumentError } from '../errors.js';

export function registriesApi(config: RegistriesConfig): RegistriesApi {
  return {
    async login(registryText, creds, opts = {}) {
      const registry = normalizeRegistry(registryText ?? DOCKER_HUB);
      if (!creds.username) throw new InvalidArgumentError('username', 'the username is empty', 'give it with -u USER');
      if (!creds.password) throw new InvalidArgumentError('password', 'the password is empty', 'give it with --password-stdin');
      const store = createCredentialStore({ ...(opts.authFile && { authFile: opts.authFile }) });
      const session = await (await import('../registry/client.js')).openSession({ registry, repository: '' }, {
        actions: [], credentials: { username: creds.username, password: creds.password },
        ...(opts.tlsVerify !== undefined && { tlsVerify: opts.tlsVerify }), ...(opts.timeouts && { timeouts: opts.timeouts }), ...(opts.signal && { signal: opts.signal }),
      }, { config, credentials: store });
      try {
        await session.ping();
      } finally {
        session.close();
      }
      if (opts.store === false) return { registry, storedIn: '', inFile: false };
      const where = await store.store(registry, { username: creds.username, password: creds.password });
      return { registry, storedIn: where ?? store.authFile, inFile: where === undefined };
    },
    async logout(registryText, opts = {}) {
      const registry = normalizeRegistry(registryText ?? DOCKER_HUB);
      const store = createCredentialStore({ ...(opts.authFile && { authFile: opts.authFile }) });
      return { registry, key: authKey(registry), removed: await store.erase(registry) };
    },
  };
}
