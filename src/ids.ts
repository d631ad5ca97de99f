import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** 64 lowercase hex characters, as Docker's container IDs. */
export type ContainerId = Brand<string, 'ContainerId'>;
/** "sha256:<64 hex>" */
export type Digest = Brand<string, 'Digest'>;
/** An image ID is the digest of its config blob, as in Docker. */
export type ImageId = Digest;
export type NetworkId = Brand<string, 'NetworkId'>;

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function newContainerId(): ContainerId {
  return randomBytes(32).toString('hex') as ContainerId;
}

export function newNetworkId(): NetworkId {
  return randomBytes(32).toString('hex') as NetworkId;
}

export function parseContainerId(s: string): ContainerId {
  if (!HEX64.test(s)) throw new InvalidArgumentError('container ID', `"${s}" is not 64 hex characters`);
  return s as ContainerId;
}

export function isDigest(s: string): s is Digest {
  return DIGEST.test(s);
}

export function parseDigest(s: string, field = 'digest'): Digest {
  if (!DIGEST.test(s)) throw new InvalidArgumentError(field, `"${s}" is not of the form sha256:<64 hex>`, 'only sha256 digests are supported');
  return s as Digest;
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

/** Docker's short form: the first 12 hex characters (of the hex part, for digests). */
export function shortId(id: string): string {
  return (id.startsWith('sha256:') ? id.slice(7) : id).slice(0, 12);
}

/** Names as Docker allows them: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
