import { InvalidArgumentError } from '../errors.js';

/** The text of the rootfs's /etc/passwd and /etc/group; '' when a file is missing. */
export interface UserDb {
  passwd: string;
  group: string;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary group first, then the groups that list the user as a member. */
  additionalGids: number[];
  home: string;
  username?: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 31 - 1;

/**
 * Resolves `-u user[:group]` (names or numeric IDs) against the image's own passwd and group files, with
 * runc's GetExecUser rules: a name must exist, a number need not; supplementary groups come from group
 * membership only when no group was given explicitly. The messages are Docker's.
 */
export function resolveUser(spec: string | undefined, db: UserDb): ResolvedUser {
  const text = spec?.trim() || '0';
  const sep = text.indexOf(':');
  const userArg = sep < 0 ? text : text.slice(0, sep);
  const groupArg = sep < 0 ? '' : text.slice(sep + 1);
  if (!userArg) throw new InvalidArgumentError('user', `"${text}" names no user`, 'use NAME, UID, NAME:GROUP or UID:GID');

  const entry = findUser(userArg, parsePasswd(db.passwd));
  const uid = entry?.uid ?? parseId('user', userArg);
  const groups = parseGroups(db.group);
  let gid = entry?.gid ?? 0;
  let memberOf: number[] = [];
  if (groupArg) {
    const g = isNumeric(groupArg) ? undefined : groups.find((x) => x.name === groupArg);
    if (!g && !isNumeric(groupArg)) {
      throw new InvalidArgumentError('user', `unable to find group ${groupArg}: no matching entries in group file`);
    }
    gid = g?.gid ?? parseId('group', groupArg);
  } else if (entry) {
    memberOf = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  }
  return {
    uid,
    gid,
    additionalGids: [...new Set([gid, ...memberOf])],
    home: entry?.home || (uid === 0 ? '/root' : '/'),
    ...(entry ? { username: entry.name } : {}),
  };
}

/**
 * What can be checked of `-u user[:group]` before the image's passwd is at hand (at create): a user is
 * named, and numeric IDs are in range. Names are resolved at start, where Docker also fails on them.
 */
export function checkUserSpec(spec: string): string {
  const text = spec.trim();
  if (!text) return '';
  const [userArg = '', groupArg = ''] = text.split(':', 2);
  if (!userArg) throw new InvalidArgumentError('user', `"${text}" names no user`, 'use NAME, UID, NAME:GROUP or UID:GID');
  if (isNumeric(userArg)) parseId('user', userArg);
  if (isNumeric(groupArg)) parseId('group', groupArg);
  if (text.split(':').length > 2 || /\s/.test(text)) throw new InvalidArgumentError('user', `"${text}" is not NAME[:GROUP]`, 'use NAME, UID, NAME:GROUP or UID:GID');
  return text;
}

/** --group-add at create: a group name or a numeric GID in range; names are resolved at start. */
export function checkGroupSpec(group: string): string {
  if (!group || /[\s:]/.test(group)) throw new InvalidArgumentError('--group-add', `"${group}" is not a group name or GID`, 'give a group name from the image\'s /etc/group, or a number');
  if (isNumeric(group) && Number(group) > MAX_ID) throw new InvalidArgumentError('--group-add', `group ID ${group} is out of range`, `give an ID from 0 to ${MAX_ID}`);
  return group;
}

/** --group-add at start: Docker's message when the image has no such group. */
export function resolveGroup(group: string, db: UserDb): number {
  if (isNumeric(group)) return Number(group);
  const g = parseGroups(db.group).find((x) => x.name === group);
  if (!g) throw new InvalidArgumentError('--group-add', `unable to find group ${group}: no matching entries in group file`, 'name a group the image\'s /etc/group has, or give a GID');
  return g.gid;
}

function findUser(arg: string, entries: PasswdEntry[]): PasswdEntry | undefined {
  if (isNumeric(arg)) return entries.find((e) => e.uid === Number(arg));
  const e = entries.find((x) => x.name === arg);
  if (!e) throw new InvalidArgumentError('user', `unable to find user ${arg}: no matching entries in passwd file`);
  return e;
}

function isNumeric(s: string): boolean {
  return /^\d+$/.test(s);
}

function parseId(kind: 'user' | 'group', s: string): number {
  const n = Number(s);
  if (!isNumeric(s) || n > MAX_ID) throw new InvalidArgumentError('user', `${kind} ID ${s} is out of range`, `give an ID from 0 to ${MAX_ID}`);
  return n;
}

/** name:password:uid:gid:gecos:home:shell; malformed lines are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  return dbLines(text).flatMap((f) => {
    if (f.length < 4 || !isNumeric(f[2]!) || !isNumeric(f[3]!)) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' }];
  });
}

/** name:password:gid:member,member */
export function parseGroups(text: string): GroupEntry[] {
  return dbLines(text).flatMap((f) => {
    if (f.length < 3 || !isNumeric(f[2]!)) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) }];
  });
}

function dbLines(text: string): string[][] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}
