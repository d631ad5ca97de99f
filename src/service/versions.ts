/**
 * The Engine API versions Berth answers to. 1.41 is Docker 20.10's (Debian 12's docker.io, and what
 * docker-compose 1.29 and dockerode expect); newer clients (the static docker 28 CLI) negotiate down to it
 * through `/_ping`'s Api-Version header, as they do with an older daemon.
 */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/** `/v1.41/containers/json` → { version: '1.41', path: '/containers/json' }; a bare path takes API_VERSION. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)?$/.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  return { version: m[1]!, path: m[2] ?? '/' };
}

/** -1, 0 or 1 as `a` is older than, the same as, or newer than `b` ('1.41' form). */
export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number) as [number, number];
  const [bm, bn] = b.split('.').map(Number) as [number, number];
  return am !== bm ? Math.sign(am - bm) : Math.sign(an - bn);
}
