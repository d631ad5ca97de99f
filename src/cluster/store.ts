/**
 * The cluster store: the key-value interface every global-scope network driver uses, so that another store
 * than etcd could be added behind it. Its words are etcd's (revisions, leases, watches) because they are
 * what a driver needs to stay correct while several hosts write at once:
 *
 *   - every change gets the store's next `revision`; a key's `modRevision` is the revision of its last change,
 *     so `compareAndSwap(key, kv.modRevision, ...)` changes a key only if nobody did since it was read;
 *   - `create` writes a key only if it is absent: one atomic step, the basis of every allocation;
 *   - a lease is a TTL a host keeps alive (`keepAliveOnce` before it runs out); keys put under it go when it
 *     expires or is revoked, which is how a dead host's state leaves the cluster;
 *   - a watch streams the changes under a prefix from a revision on: `list` then `watch(prefix,
 *     { fromRevision: list.revision + 1 })` misses nothing and sees nothing twice.
 *
 * Keys and values are strings (callers JSON-encode values). Failures: ClusterUnavailableError when the store
 * does not answer within the deadline (never a hang), ClusterStoreError when it refuses (src/errors.ts).
 */

declare const brand: unique symbol;
/** etcd's lease ID: a 64-bit number, kept as its decimal string so that no precision is lost. */
export type LeaseId = string & { readonly [brand]: 'LeaseId' };

export interface KeyValue {
  key: string;
  value: string;
  /** revision of the key's last change */
  modRevision: number;
  /** revision at which the key was created (since its last deletion) */
  createRevision: number;
  /** the lease the key lives under, if any */
  lease?: LeaseId;
}

export interface PutOptions {
  /** the key goes when this lease expires or is revoked */
  lease?: LeaseId;
}

export interface DeleteOptions {
  /** delete only if the key's modRevision is still this one */
  ifModRevision?: number;
  /** delete only if the key's value is still this one (e.g. an address still held by its owner) */
  ifValue?: string;
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue }
  | { type: 'delete'; key: string; modRevision: number }
  /**
   * The revisions the watch needed were compacted away (etcd keeps a bounded history): changes were missed.
   * The watch ends after this event; the caller re-lists the prefix and watches again from the new revision.
   */
  | { type: 'compacted'; compactRevision: number };

/** An endless stream of changes (it reconnects after a store restart, resuming after the last revision seen). */
export interface Watch extends AsyncIterable<WatchEvent> {
  /** Ends the stream: a pending `next()` resolves with `done`. */
  close(): void;
}

export interface ClusterStore {
  /** The endpoints, as URLs, in the order they are tried. */
  readonly endpoints: readonly string[];
  get(key: string): Promise<KeyValue | undefined>;
  /** Every key under `prefix` (sorted), with the store revision they were read at. */
  list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }>;
  /** Writes the key; resolves with its new modRevision. */
  put(key: string, value: string, opts?: PutOptions): Promise<number>;
  /** Writes the key only if it is absent (atomically); false when it existed. */
  create(key: string, value: string, opts?: PutOptions): Promise<boolean>;
  /** Writes every key, only if all are absent: all or none (one etcd transaction). */
  createAll(entries: readonly { key: string; value: string; lease?: LeaseId }[]): Promise<boolean>;
  /** Writes the key only if its modRevision is still `expectedModRevision`; false otherwise. */
  compareAndSwap(key: string, expectedModRevision: number, value: string, opts?: PutOptions): Promise<boolean>;
  /** Deletes the key (if the conditions hold); true when a key was deleted. */
  delete(key: string, opts?: DeleteOptions): Promise<boolean>;
  /** Deletes every key under `prefix` (an empty prefix is refused); resolves with how many went. */
  deletePrefix(prefix: string): Promise<number>;
  /** A new lease of `ttlSeconds` (etcd may round it up to its minimum). */
  grantLease(ttlSeconds: number): Promise<LeaseId>;
  /** Renews the lease; resolves with its TTL, or 0 when it is gone (expired or revoked). */
  keepAliveOnce(id: LeaseId): Promise<number>;
  /** Ends the lease and deletes its keys; a lease already gone is ClusterStoreError 'lease-not-found' (alreadyGone). */
  revokeLease(id: LeaseId): Promise<void>;
  /** Changes under `prefix` after `fromRevision - 1` (default: from now on). */
  watch(prefix: string, opts?: { fromRevision?: number }): Watch;
  /** Ends every watch and connection; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** The end of etcd's range for "every key starting with `prefix`": the prefix with its last byte plus one. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff (or empty): etcd's "\0" means "to the end of the keyspace".
  return Buffer.from([0]);
}
