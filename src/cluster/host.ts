/**
 * This host as the cluster knows it: a stable id per root, and the etcd lease its registration, endpoints
 * and addresses live under. The lease is what makes a dead host's state leave the cluster: whoever keeps it
 * alive (the agent, agent.ts; or a command, before any agent runs) renews it, and when nobody does for a
 * TTL, etcd deletes every key put under it.
 *
 *   ROOT/cluster/host.json      { id, address, endpoints, created }  made once; the id never changes
 *   RUNROOT/cluster/lease.json  { id, ttl, granted, pending }         the current lease (volatile: a reboot
 *                                                                    ends it anyway, nobody renewed it)
 *
 * `lease()` returns the live lease, or grants a new one and registers the host under it. A new lease means
 * every key this host had put under the old one is gone (or going): the caller must put them again, which
 * is what the `onNewLease` hooks do. Until they all succeed, lease.json says `pending` and the next call
 * runs them again (the incomplete flag of STYLE.md: a command killed mid-hook leaves work the next one does).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CorruptError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import { ownedTempName, readJsonIfExists, writeJsonAtomic } from '../util/fs.js';
import { failpoint } from '../util/failpoint.js';
import { acquireLock } from '../util/lock.js';
import { VERSION } from '../version.js';
import { keys } from './keys.js';
import type { ClusterStore, LeaseId } from './store.js';

/** Where the cluster layer keeps this root's files. */
export interface ClusterPaths {
  /** ROOT/cluster/host.json */
  hostFile: string;
  /** RUNROOT/cluster: the agent's and the lease's volatile files */
  run: string;
  leaseFile: string;
  /** serialises lease checks and grants between commands and the agent */
  leaseLock: string;
  /** the agent's "pid starttime"; also its lock (one agent per root) */
  agentPid: string;
  agentLog: string;
}

export function clusterPaths(layout: Pick<StoreLayout, 'root' | 'runroot'>): ClusterPaths {
  const run = path.join(layout.runroot, 'cluster');
  return {
    hostFile: path.join(layout.root, 'cluster', 'host.json'),
    run,
    leaseFile: path.join(run, 'lease.json'),
    leaseLock: path.join(run, 'lease.lock'),
    agentPid: path.join(run, 'agent.pid'),
    agentLog: path.join(run, 'agent.log'),
  };
}

export interface HostIdentity {
  /** stable for the life of the root: 16 hex digits */
  id: string;
  /** the advertise address it was last registered with */
  address: string;
  /** the store's endpoints it was last registered with */
  endpoints: string[];
  created: string;
}

/** The value of /berth/v1/hosts/<id>. */
export interface HostRegistration {
  id: string;
  address: string;
  hostname: string;
  berthVersion: string;
  /** when this lease was granted: the host's registration is as old as its lease */
  since: string;
}

interface LeaseFile {
  id: LeaseId;
  ttl: number;
  granted: string;
  /** the onNewLease hooks have not all succeeded yet */
  pending: boolean;
}

export interface HostLease {
  id: LeaseId;
  /** the TTL etcd reported at the last renewal or grant, in seconds */
  ttl: number;
  /** A new lease was granted: what this host had under the old one is gone (the hooks have put it back). */
  fresh: boolean;
}

/** Called with a new lease: put again, under it, every key this host owns. */
export type NewLeaseHook = (lease: LeaseId) => Promise<void>;

export interface ClusterHost {
  readonly id: string;
  readonly address: string;
  readonly paths: ClusterPaths;
  /**
   * The live lease (renewed once now), or a new one with the host registered under it and every hook run.
   * Hook failures are thrown together (AggregateError) after the lease is kept; the next call runs the
   * hooks again. ClusterUnavailableError when the store does not answer.
   */
  lease(store: ClusterStore, ttl: number, onNewLease?: readonly NewLeaseHook[]): Promise<HostLease>;
  /** The lease this root last held, if any (no store call). */
  currentLease(): Promise<LeaseId | undefined>;
  /**
   * Leaves the cluster if `idle()` still says this host has nothing to keep, asked under the lease lock (a
   * command that takes the lease first has recorded its endpoint, so idle() sees it; one that comes after
   * gets a new lease): revokes the lease (its keys go now; a store that does not answer leaves it to
   * expire), forgets it, then runs `then` before the lock is let go (the agent drops its pidfile there, so
   * that a command coming next starts a new agent). Resolves false, doing nothing, when not idle.
   */
  retire(store: ClusterStore, idle?: () => Promise<boolean>, then?: () => Promise<void>): Promise<{ retired: boolean; revokeError?: unknown }>;
}

/**
 * This root's host: its identity is made on first use and kept; a changed advertise address or store is
 * written back (the id stays: the other hosts know this host by it).
 */
export async function openClusterHost(layout: Pick<StoreLayout, 'root' | 'runroot'>, where: { address: string; endpoints: readonly string[] }): Promise<ClusterHost> {
  const paths = clusterPaths(layout);
  const loaded = await loadIdentity(paths.hostFile, where);
  const identity = loaded.identity;
  // A changed address must reach the other hosts even while the lease lives on: registered at the next renewal.
  let reregister = loaded.changed;
  const readLease = async () => {
    const l = await readJsonIfExists<LeaseFile>(paths.leaseFile).catch(() => undefined);
    // A file we cannot read names no lease we could renew: granting a new one repairs it.
    return l && typeof l.id === 'string' && /^\d+$/.test(l.id) ? l : undefined;
  };
  const withLeaseLock = async <T>(fn: () => Promise<T>): Promise<T> => {
    await fsp.mkdir(paths.run, { recursive: true, mode: 0o700 });
    const lock = await acquireLock(paths.leaseLock);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  };
  const register = (store: ClusterStore, lease: LeaseId, since: string) => {
    const reg: HostRegistration = { id: identity.id, address: identity.address, hostname: os.hostname(), berthVersion: VERSION, since };
    return store.put(keys.host(identity.id), JSON.stringify(reg), { lease });
  };
  const runHooks = async (file: LeaseFile, hooks: readonly NewLeaseHook[]) => {
    const failed: unknown[] = [];
    for (const hook of hooks) {
      try {
        await hook(file.id);
      } catch (err) {
        failed.push(err);
      }
    }
    if (failed.length) throw new AggregateError(failed, `re-registering this host's keys under lease ${file.id} failed: ${failed.map((f) => (f as Error).message).join('; ')}`);
    await writeJsonAtomic(paths.leaseFile, { ...file, pending: false });
  };

  return {
    id: identity.id,
    address: identity.address,
    paths,
    // Under the lock: two commands finding the lease dead at once must not both grant one (the loser's keys
    // would live under a lease nobody renews), and the agent's idle exit must not revoke a lease a command
    // has just been handed.
    lease: (store, ttl, hooks = []) => withLeaseLock(async () => {
      const known = await readLease();
      if (known) {
        const left = await store.keepAliveOnce(known.id);
        if (left > 0) {
          if (reregister) {
            await register(store, known.id, known.granted);
            reregister = false;
          }
          if (known.pending) await runHooks(known, hooks);
          return { id: known.id, ttl: left, fresh: false };
        }
      }
      const id = await store.grantLease(ttl);
      const file: LeaseFile = { id, ttl, granted: new Date().toISOString(), pending: true };
      // Written before the registration: a command killed in between leaves a lease file that the next one
      // renews (or replaces), never a registration under a lease nobody knows.
      await writeJsonAtomic(paths.leaseFile, file);
      await register(store, id, file.granted);
      reregister = false;
      failpoint('cluster.lease.before-hooks');
      await runHooks(file, hooks);
      return { id, ttl, fresh: true };
    }),
    currentLease: async () => (await readLease())?.id,
    retire: (store, idle = async () => true, then) => withLeaseLock(async () => {
      if (!(await idle())) return { retired: false };
      const known = await readLease();
      let revokeError: unknown;
      if (known) {
        try {
          await store.revokeLease(known.id);
        } catch (err) {
          if (!(err as { alreadyGone?: boolean }).alreadyGone) revokeError = err;
        }
        await fsp.rm(paths.leaseFile, { force: true });
      }
      await then?.();
      return { retired: true, ...(revokeError ? { revokeError } : {}) };
    }),
  };
}

async function loadIdentity(file: string, where: { address: string; endpoints: readonly string[] }): Promise<{ identity: HostIdentity; changed: boolean }> {
  const endpoints = [...where.endpoints];
  let found = await readIdentity(file);
  if (!found) {
    // Made once, even when two processes of a fresh root get here together: the file is linked into place
    // only if absent, and the loser reads the winner's id.
    const made: HostIdentity = { id: randomBytes(8).toString('hex'), address: where.address, endpoints, created: new Date().toISOString() };
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = path.join(path.dirname(file), ownedTempName('.tmp-host.json'));
    await writeJsonAtomic(tmp, made);
    try {
      await fsp.link(tmp, file);
      return { identity: made, changed: false };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    found = (await readIdentity(file))!;
  }
  if (found.address === where.address && JSON.stringify(found.endpoints) === JSON.stringify(endpoints)) return { identity: found, changed: false };
  // The id stays: the other hosts know this host by it.
  const identity: HostIdentity = { ...found, address: where.address, endpoints };
  await writeJsonAtomic(file, identity);
  return { identity, changed: true };
}

async function readIdentity(file: string): Promise<HostIdentity | undefined> {
  const hint = 'remove it: this host gets a new id (its old registration expires with its lease)';
  let found: HostIdentity | undefined;
  try {
    found = await readJsonIfExists<HostIdentity>(file);
  } catch (err) {
    throw new CorruptError(`${file} is not valid JSON`, hint, { cause: err });
  }
  if (found !== undefined && (typeof found !== 'object' || found === null || typeof found.id !== 'string' || !/^[0-9a-f]{16}$/.test(found.id))) {
    throw new CorruptError(`${file} holds no valid host id`, hint);
  }
  return found;
}
