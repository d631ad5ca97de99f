import { createHash } from 'node:crypto';
import path from 'node:path';
import { rootlessDirs, rootlessFacts } from './rootless/index.js';

export const DEFAULT_ROOT = '/var/lib/berth';
export const DEFAULT_RUNROOT = '/run/berth';
/** The builder's temp folder in a root (unpacked contexts, secrets, downloads), swept of killed builds' folders. */
export const buildTempDir = (root: string): string => `${root}/build-tmp`;

/**
 * Where a store keeps things. `root` is persistent (images, layers, container records); `runroot` is
 * volatile state that a reboot should clear (runc state, monitor pid/exit files, netns mounts, locks).
 * A non-default root gets its own runroot, derived from the root's path, so two roots never share state
 * (Podman's --root/--runroot). Paths under runroot stay short: unix socket paths are limited to 108 bytes.
 */
export interface StoreLayout {
  readonly root: string;
  readonly runroot: string;
  /** content-addressed blobs: blobs/sha256/<hex> */
  readonly blobs: string;
  /** unpacked layers keyed by diffID, plus the short links overlay lowerdirs name */
  readonly layers: string;
  /** image records and tags */
  readonly images: string;
  /** one writable overlay layer per container (upper, work, merged) */
  readonly snapshots: string;
  /** one folder per container: record, bundle, log, userdata files */
  readonly containers: string;
  readonly networks: string;
  readonly volumes: string;
  /** runc --root */
  readonly runc: string;
  /** lock files, one per store object */
  readonly locks: string;
  /** bind-mounted network namespaces */
  readonly netns: string;
  /** monitor exit files and sockets */
  readonly exits: string;
  readonly sockets: string;
}

/**
 * Who may enter what: the store is private, as Docker's. Records, env, logs and bundles are the owner's
 * alone (files 0600, folders 0700), and so is all of runroot. Three kinds of exception:
 * - `traverse` (0711): the root, snapshots/ and containers/. A user-namespaced container's root (a host
 *   uid other than 0) must walk through them to reach its rootfs (snapshots/<key>/merged) and the files
 *   bound into it; x without r lets it pass without listing anything. They hold many containers, so no
 *   single group can be given.
 * - `owned` (0710): snapshots/<key>/ and containers/<id>/. Group-only traversal: the group is root's
 *   today, so others are kept out; a user-namespaced container gets its own folders' group set to its
 *   root's gid (Podman's userdata), so only that container may pass. layers/ needs neither: overlayfs
 *   reads lower layers with the mounter's credentials.
 * - `mounted` (0644): hosts, resolv.conf and hostname, bound into the container, where its non-root users
 *   must read them; their folder (`owned`) keeps other host users out.
 */
export const STORE_MODES = {
  file: 0o600,
  dir: 0o700,
  traverse: 0o711,
  owned: 0o710,
  mounted: 0o644,
} as const;

export interface LayoutOptions {
  root?: string;
  runroot?: string;
}

/**
 * Where the store is: an explicit option first, then $BERTH_ROOT/$BERTH_RUNROOT, then `fallback` (the
 * configuration file's data-root/exec-root), then the defaults.
 */
export function resolveLayout(opts: LayoutOptions = {}, env: NodeJS.ProcessEnv = process.env, fallback: LayoutOptions = {}): StoreLayout {
  const defaults = defaultDirs(env);
  const root = path.resolve(opts.root ?? env.BERTH_ROOT ?? fallback.root ?? defaults.root);
  const runroot = path.resolve(opts.runroot ?? env.BERTH_RUNROOT ?? fallback.runroot ?? defaultRunroot(root, defaults));
  return {
    root,
    runroot,
    blobs: path.join(root, 'blobs'),
    layers: path.join(root, 'layers'),
    images: path.join(root, 'images'),
    snapshots: path.join(root, 'snapshots'),
    containers: path.join(root, 'containers'),
    networks: path.join(root, 'networks'),
    volumes: path.join(root, 'volumes'),
    runc: path.join(runroot, 'runc'),
    locks: path.join(runroot, 'locks'),
    netns: path.join(runroot, 'netns'),
    exits: path.join(runroot, 'exits'),
    sockets: path.join(runroot, 's'),
  };
}

/** The default root and runroot: /var/lib/berth and /run/berth for root, the user's own folders rootless. */
export function defaultDirs(env: NodeJS.ProcessEnv = process.env): { root: string; runroot: string } {
  const facts = rootlessFacts();
  if (!facts.rootless) return { root: DEFAULT_ROOT, runroot: DEFAULT_RUNROOT };
  return rootlessDirs(env, process.geteuid?.() ?? 0, facts.hostUid);
}

export function defaultRunroot(root: string, defaults: { root: string; runroot: string } = defaultDirs()): string {
  if (path.resolve(root) === defaults.root) return defaults.runroot;
  return path.join(defaults.runroot, rootTag(root));
}

/** A short stable tag for a non-default root, so its host objects never meet another root's. */
export function rootTag(root: string): string {
  return createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 12);
}

export interface HostNames {
  /** the default `bridge` network's Linux bridge */
  bridgeName: string;
  /** the default root's fixed candidate for its default bridge's subnet */
  subnet?: string;
  /** another root's: a number from its path, picking its default bridge's candidate from the pools */
  subnetSeed?: number;
  /** prefix of every iptables chain of this root */
  chainPrefix: string;
}

/**
 * Host-wide names of a root's default network. The default root gets Docker-like names (berth0,
 * 10.159.0.0/16 tried first, BERTH-*); any other root gets names and a seed for its subnet derived from
 * its path, so a test root or a second store never collides with the default one. Either subnet is only
 * a first candidate: the network layer checks it against the host when the bridge is made.
 */
export function hostNames(root: string): HostNames {
  if (path.resolve(root) === DEFAULT_ROOT) return { bridgeName: 'berth0', subnet: '10.159.0.0/16', chainPrefix: 'BERTH' };
  const tag = rootTag(root);
  const n = parseInt(tag.slice(0, 4), 16);
  return {
    bridgeName: `berth${tag.slice(0, 8)}`,
    subnetSeed: n,
    chainPrefix: `BERTH${tag.slice(0, 6).toUpperCase()}`,
  };
}
