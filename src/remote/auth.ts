/**
 * Registry logins against a remote engine, as the docker CLI keeps them with a remote daemon: the login is
 * checked by the remote (POST /auth: the registry must accept it from there) and kept in THIS machine's
 * credential store; every pull and push then sends the login of its registry in X-Registry-Auth. The
 * remote host keeps nothing, so a login here never becomes another user's there.
 */
import { InvalidArgumentError } from '../errors.js';
import { createCredentialStore, forgetLogin, loginRegistry } from '../registry/credentials.js';
import type { RegistryCredentials } from '../registry/index.js';
import { resolveReference } from '../registry/names.js';
import { authKey } from '../registry/names.js';
import type { RegistriesApi } from '../types.js';
import type { ApiClient } from './client.js';

/** X-Registry-Auth: base64url JSON of the login, as the docker CLI sends it. */
export function authHeader(creds: RegistryCredentials | undefined): Record<string, string> | undefined {
  if (!creds) return undefined;
  const json = JSON.stringify({ username: creds.username, password: creds.password, ...(creds.identityToken && { identitytoken: creds.identityToken }) });
  return { 'X-Registry-Auth': Buffer.from(json).toString('base64url') };
}

/** The login this machine keeps for `ref`'s registry (docker.io for a short name, as the docker CLI resolves it). */
export async function localLoginFor(client: ApiClient, ref: string): Promise<RegistryCredentials | undefined> {
  let registry: string;
  try {
    registry = resolveReference(ref).registry;
  } catch {
    return undefined; // a malformed name: the remote refuses it, naming it, as it does without a login
  }
  return createCredentialStore({ env: client.env }).get(registry);
}

/**
 * X-Registry-Config of a build: every login this machine keeps, by registry, as the docker CLI sends them
 * (the remote builder picks the one of each FROM image's registry). undefined when there is none.
 */
export async function registryConfigHeader(client: ApiClient): Promise<Record<string, string> | undefined> {
  const store = createCredentialStore({ env: client.env });
  const logins: Record<string, { username: string; password: string; identitytoken?: string }> = {};
  for (const registry of await store.registries()) {
    const creds = await store.get(registry);
    if (creds) logins[registry] = { username: creds.username, password: creds.password, ...(creds.identityToken && { identitytoken: creds.identityToken }) };
  }
  return Object.keys(logins).length ? { 'X-Registry-Config': Buffer.from(JSON.stringify(logins)).toString('base64url') } : undefined;
}

export function remoteRegistries(client: ApiClient): RegistriesApi {
  return {
    async login(registryText, creds, opts = {}) {
      const registry = loginRegistry(registryText, creds);
      if (opts.tlsVerify === false) {
        throw new InvalidArgumentError('--tls-verify', `login on a remote host is checked by that host, which follows its insecure-registries, not --tls-verify=false`, 'list the registry in insecure-registries of the remote\'s /etc/berth/berth.json');
      }
      await client.json('POST', '/auth', {
        body: { username: creds.username, password: creds.password, serveraddress: authKey(registry) },
        registry, ...(opts.signal && { signal: opts.signal }),
      });
      if (opts.store === false) return { registry, storedIn: '', inFile: false };
      const store = createCredentialStore({ env: client.env, ...(opts.authFile && { authFile: opts.authFile }) });
      const where = await store.store(registry, { username: creds.username, password: creds.password });
      return { registry, storedIn: where ?? store.authFile, inFile: where === undefined };
    },
    logout: (registryText, opts = {}) => forgetLogin(registryText, { env: client.env, ...(opts.authFile && { authFile: opts.authFile }) }),
  };
}
