import { promises as fsp, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { STORE_MODES, type StoreLayout } from '../paths.js';
import type { CreateRequest } from '../options.js';
import {
  checkIdMaps, formatIdMap, formatUsernsMode, keepIdMaps, parseIdMap, parseUsernsMode, toContainerId, toHostId,
  type IdAllocator, type IdMap, type IdMapping, type NestedUsernsFacts, type UsernsMode,
} from '../userns/index.js';
import type { MountPoint } from './ports.js';

/** A container's user namespace, as its record keeps it. */
export interface UsernsConfig {
  /** what inspect shows as HostConfig.UsernsMode: the --userns word, "private" for --uidmap */
  mode: string;
  /** auto: a range of `size` ids from the allocator, taken at create, given back at rm; fixed: --uidmap, keep-id */
  source: 'auto' | 'fixed';
  size?: number;
  /** the maps; an auto range's are filled in at create, before anything is made with them */
  idmap?: IdMapping;
  /**
   * Rootless keep-id: the user, whose passwd and group entries start adds to the container's files when
   * they lack them (Podman's), and who runs the process unless --user says otherwise.
   */
  keepId?: { uid: number; gid: number; name: string; home: string };
}

/**
 * What the container layer needs of user namespaces: the allocator, the engine's default (userns-remap),
 * and, rootless, the user and the size of its namespace, in which a container's own is nested.
 */
export interface UsernsPort {
  allocator: IdAllocator;
  default?: UsernsMode;
  rootless?: NestedUsernsFacts;
}

/**
 * --userns, --uidmap and --gidmap (podman's flags), over the engine's default. Pure: a refusal leaves
 * nothing behind. Undefined: no user namespace (the host's, as without the flags; rootless: the user's).
 * Rootless, a container's namespace is nested in Berth's own, so its maps' "host" ids are ids of that
 * namespace (0 = the user, 1.. its subordinate ids), as Podman's rootless maps are.
 */
export function planUserns(req: CreateRequest, dflt: UsernsMode | undefined, rootless?: NestedUsernsFacts): UsernsConfig | undefined {
  const explicit = req.userns ? parseUsernsMode(req.userns) : undefined;
  if (rootless) {
    if (!explicit && !req.uidmap?.length && !req.gidmap?.length && dflt && dflt.kind !== 'host') {
      throw new InvalidArgumentError('userns-remap', 'rootless Berth does not support "userns-remap": its containers run in the user\'s own user namespace',
        'remove "userns-remap" from your configuration file (~/.config/berth/berth.json), or give --userns auto to the containers that need a range of their own');
    }
    if (explicit?.kind === 'keep-id') {
      if (req.uidmap?.length || req.gidmap?.length) throw new InvalidArgumentError('--uidmap', '--uidmap and --gidmap cannot be combined with --userns keep-id', 'give either --userns keep-id or the maps');
      const { uid, gid, name, home } = rootless;
      return { mode: 'keep-id', source: 'fixed', idmap: { uid: keepIdMaps(uid, rootless.uids), gid: keepIdMaps(gid, rootless.gids) }, keepId: { uid, gid, name, home } };
    }
    if (!explicit && !req.uidmap?.length && !req.gidmap?.length) return undefined;
  }
  if (explicit?.kind === 'keep-id') {
    throw new InvalidArgumentError('--userns', 'keep-id maps the calling user into the container, which means something only to rootless Berth; this Berth runs as root',
      'use --userns auto (a range of its own) or --uidmap, or run Berth as a non-root user');
  }
  if (req.uidmap?.length || req.gidmap?.length) {
    if (explicit && explicit.kind !== 'private') {
      throw new InvalidArgumentError('--uidmap', `--uidmap and --gidmap cannot be combined with --userns ${req.userns}`, 'give either --userns or the maps (--userns private may go with them)');
    }
    if (!req.uidmap?.length) throw new InvalidArgumentError('--gidmap', '--gidmap was given without --uidmap', 'give --uidmap too (without --gidmap the gids follow the uid map)');
    const uid = checkIdMaps('--uidmap', req.uidmap.map((m) => parseIdMap('--uidmap', m)));
    const gid = req.gidmap?.length ? checkIdMaps('--gidmap', req.gidmap.map((m) => parseIdMap('--gidmap', m))) : uid.map((m) => ({ ...m }));
    for (const [field, maps] of [['--uidmap', uid], ['--gidmap', gid]] as const) {
      // runc switches to the container's root before anything else; an unmapped root fails there, less clearly.
      if (toHostId(maps, 0) === undefined) throw new InvalidArgumentError(field, `${maps.map(formatIdMap).join(' ')} leaves container id 0 (root) unmapped`, `map it, e.g. ${field} 0:100000:65536`);
    }
    if (rootless) {
      for (const [field, maps, size] of [['--uidmap', uid, rootless.uids], ['--gidmap', gid, rootless.gids]] as const) {
        const past = maps.find((m) => m.hostID + m.size > size);
        if (past) {
          throw new InvalidArgumentError(field, `${formatIdMap(past)} goes past the ${size} ids of your user namespace (0 is your user, 1 to ${size - 1} your subordinate ids)`,
            `give host ids below ${size}, e.g. ${field} 0:1:${Math.min(65536, size - 1)}`);
        }
      }
    }
    return { mode: 'private', source: 'fixed', idmap: { uid, gid } };
  }
  const mode = explicit ?? dflt;
  if (!mode || mode.kind === 'host' || mode.kind === 'keep-id') return undefined;
  // Root podman's private without maps is a fresh range too, so the two are one here.
  return { mode: formatUsernsMode(mode), source: 'auto', size: mode.size };
}

/**
 * The namespaces a user namespace cannot share with the host under runc 1.1, refused at create rather
 * than failing every start. Checked against real runs (test/container/userns.test.ts).
 */
export function checkUsernsCombination(req: CreateRequest, userns: UsernsConfig | undefined): void {
  if (!userns) return;
  // Docker's rule: the host's devices and every capability mean nothing to a root the host does not know.
  if (req.privileged) {
    throw new InvalidArgumentError('--privileged', 'privileged mode is incompatible with user namespaces', 'add --userns host to run this container privileged, or leave out --privileged');
  }
  // The other container's netns belongs to another user namespace (or the host's): runc exec, which
  // joins this container's user namespace first, could not enter it.
  if (req.network?.networks?.[0]?.startsWith('container:')) {
    throw new InvalidArgumentError('--network', `--network ${req.network.networks[0]} cannot be used with a user namespace: the network namespace belongs to another one`,
      'leave out --network container:..., or add --userns host');
  }
  // proc may be mounted only by the owner of the pid namespace, and the host's is not the container's.
  if (req.pid === 'host') {
    throw new InvalidArgumentError('--pid', '--pid host cannot be used with a user namespace: the container could not mount /proc', 'add --userns host, or leave out --pid host');
  }
  // In a user namespace runc cannot mknod: it binds the node found at the container's path on the host.
  for (const dev of req.devices ?? []) {
    const [host = '', inside] = dev.split(':');
    if (inside && inside.startsWith('/') && inside !== host) {
      throw new InvalidArgumentError('--device', `--device ${dev} renames the device, which cannot be done in a user namespace (runc binds the host's node at the same path)`,
        `give --device ${host} (the same path inside), or add --userns host`);
    }
  }
}

/** The host ids of a container id pair, or the ids themselves without a user namespace. */
export function hostIds(idmap: IdMapping | undefined, uid: number, gid: number): { uid: number; gid: number } {
  if (!idmap) return { uid, gid };
  return { uid: toHostId(idmap.uid, uid) ?? overflow(idmap.uid), gid: toHostId(idmap.gid, gid) ?? overflow(idmap.gid) };
}

function overflow(maps: readonly IdMap[]): number {
  return toHostId(maps, 65534) ?? maps[0]!.hostID;
}

/**
 * podman's :U: the source, recursively, belongs to the container's process user (its host ids). Symlinks
 * are changed themselves, never followed out of the source.
 */
export async function chownMountSources(mounts: readonly MountPoint[], owner: { uid: number; gid: number }): Promise<void> {
  for (const m of mounts) {
    if (m.chown && m.source) await chownTree(m.source, () => () => owner);
  }
}

/** lchown of a tree to the owner `owner` gives each entry (from its path and stat), never following links. */
export async function chownTree(dir: string, owner: (file: string) => (st: Stats) => { uid: number; gid: number }): Promise<void> {
  const st = await fsp.lstat(dir);
  const to = owner(dir)(st);
  await fsp.lchown(dir, to.uid, to.gid);
  // chown(2) clears set-id bits even for root: put them back.
  if (!st.isSymbolicLink() && (st.mode & 0o6000)) await fsp.chmod(dir, st.mode & 0o7777);
  if (!st.isDirectory()) return;
  for (const name of await fsp.readdir(dir)) await chownTree(path.join(dir, name), owner);
}

/**
 * A named or anonymous volume made for a user-namespaced container belongs to its root (podman's rule),
 * unless it already has content or an owner of its own: then its owners are the data's and stay.
 */
export async function giveNewVolumesToRoot(mounts: readonly MountPoint[], idmap: IdMapping): Promise<void> {
  const root = hostIds(idmap, 0, 0);
  for (const m of mounts) {
    if (m.type !== 'volume' || !m.source) continue;
    const st = await fsp.stat(m.source).catch(() => undefined);
    if (!st || st.uid !== 0 || st.gid !== 0 || (await fsp.readdir(m.source)).length) continue;
    await fsp.chown(m.source, root.uid, root.gid);
  }
}

/**
 * A user-namespaced container's root is another host user: it must be able to pass through every folder
 * above its rootfs. A new store's root is private until the next command opens it (store.ts); it is
 * opened to passing now. A folder above the store that others cannot pass is refused by name (podman
 * checks the same), since runc's "permission denied" on the rootfs would not say where.
 */
export async function checkReachable(layout: StoreLayout, idmap: IdMapping): Promise<void> {
  const root = await fsp.stat(layout.root);
  // A folder whose owner the container maps (rootless keep-id maps the user) is passed as its owner: its
  // root has CAP_DAC_OVERRIDE over files whose owner and group it maps.
  const mapped = (st: { uid: number; gid: number }) => toContainerId(idmap.uid, st.uid) !== undefined && toContainerId(idmap.gid, st.gid) !== undefined;
  if (mapped(root)) return;
  if ((root.mode & 0o777) === STORE_MODES.dir) await fsp.chmod(layout.root, STORE_MODES.traverse);
  // runc drops supplementary groups only in a user namespace it makes itself: one it joins (the netns
  // owner's) keeps Berth's, and a folder of one of those groups is passed by its group bits, not others'.
  const groups = new Set([process.getegid?.() ?? 0, ...(process.getgroups?.() ?? [])]);
  for (let dir = path.dirname(path.resolve(layout.root)); ; dir = path.dirname(dir)) {
    const st = await fsp.stat(dir);
    const bits = groups.has(st.gid) ? { mask: 0o010, who: 'its group', chmod: 'g+x' } : { mask: 0o001, who: 'other users', chmod: 'o+x' };
    if (!(st.mode & bits.mask) && !mapped(st)) {
      throw new BadStateError(`${dir} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) cannot be passed by ${bits.who}, so the root of a container in a user namespace could not reach its files under ${layout.root}`,
        `let them pass with "chmod ${bits.chmod} ${dir}", or keep the store (--root) under folders others may pass`);
    }
    if (dir === '/') break;
  }
}

/** Larger maps are refused by tarOwnerMaps: a line per id would make a file of tens of megabytes. */
const MAX_TAR_MAPPED = 1 << 20;

/**
 * GNU tar's --owner-map/--group-map for archives made from a user-namespaced container's files (export,
 * cp out): each host id of the maps written as the container id it stands for. `cleanup` removes the
 * files once tar has read them.
 */
export async function tarOwnerMaps(idmap: IdMapping | undefined): Promise<{ args: string[]; cleanup: () => Promise<void> }> {
  if (!idmap) return { args: [], cleanup: async () => {} };
  const total = (maps: readonly IdMap[]) => maps.reduce((n, m) => n + m.size, 0);
  if (total(idmap.uid) > MAX_TAR_MAPPED || total(idmap.gid) > MAX_TAR_MAPPED) {
    throw new BadStateError(`the container's id maps cover more than ${MAX_TAR_MAPPED} ids, too many to translate in an archive`, 'copy with "berth exec CONTAINER tar ..." instead');
  }
  const dir = await fsp.mkdtemp(path.join(tmpdir(), 'berth-idmap-'));
  const lines = (maps: readonly IdMap[]) => maps.flatMap((m) => Array.from({ length: m.size }, (_, i) => `+${m.hostID + i} +${m.containerID + i}\n`)).join('');
  await fsp.writeFile(path.join(dir, 'uid'), lines(idmap.uid));
  await fsp.writeFile(path.join(dir, 'gid'), lines(idmap.gid));
  return {
    args: [`--owner-map=${path.join(dir, 'uid')}`, `--group-map=${path.join(dir, 'gid')}`],
    cleanup: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Podman's keep-id: the container's /etc/passwd and /etc/group gain entries for the user (its host name and
 * home) when they have none for its ids, so that whoami, ls -l and $HOME work. Written into the rootfs
 * (the container's upper layer, as Podman does). Files that are not plain files, or under a /etc that is a
 * symbolic link, are left alone: a link could point out of the rootfs, at the user's own files.
 */
export async function addKeepIdUser(rootfs: string, user: NonNullable<UsernsConfig['keepId']>): Promise<void> {
  const etc = path.join(rootfs, 'etc');
  const dir = await fsp.lstat(etc).catch(() => undefined);
  if (!dir?.isDirectory()) return;
  const add = async (name: string, has: (fields: string[]) => boolean, line: string) => {
    const file = path.join(etc, name);
    const st = await fsp.lstat(file).catch(() => undefined);
    if (st && !st.isFile()) return;
    const text = st ? await fsp.readFile(file, 'utf8') : '';
    if (text.split('\n').some((l) => has(l.split(':')))) return;
    await fsp.appendFile(file, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o644 });
  };
  await add('passwd', (f) => f[2] === String(user.uid), `${user.name}:*:${user.uid}:${user.gid}:${user.name}:${user.home}:/bin/sh`);
  await add('group', (f) => f[2] === String(user.gid), `${user.name}:x:${user.gid}:`);
}
