import { InvalidArgumentError } from '../errors.js';

/**
 * `--chown=USER[:GROUP]` as BuildKit resolves it: numbers as they are, names from the build image's
 * /etc/passwd and /etc/group. A user given alone brings its primary group when named, and the same
 * number as group when numeric (Docker's rule).
 */
export function resolveChown(spec: string, files: { passwd?: string; group?: string }): { uid: number; gid: number } {
  const i = spec.indexOf(':');
  const user = i < 0 ? spec : spec.slice(0, i);
  const group = i < 0 ? undefined : spec.slice(i + 1);
  if (user === '' || group === '') throw new InvalidArgumentError('--chown', `"${spec}" is not USER[:GROUP]`, 'e.g. --chown=app:app or --chown=1000:1000');
  let uid: number;
  let primary: number | undefined;
  if (/^\d+$/.test(user)) {
    uid = Number(user);
  } else {
    // root without a passwd file (scratch) is still 0, as before names were read.
    const entry = lookup(files.passwd, user) ?? (user === 'root' ? { id: 0, fields: ['root', 'x', '0', '0'] } : undefined);
    if (!entry) throw new InvalidArgumentError('--chown', `"${spec}": no user "${user}" in the image's /etc/passwd`, 'add the user in an earlier RUN, or give a numeric ID');
    uid = entry.id;
    primary = Number(entry.fields[3]);
  }
  if (group === undefined) return { uid, gid: primary ?? uid };
  if (/^\d+$/.test(group)) return { uid, gid: Number(group) };
  const entry = lookup(files.group, group) ?? (group === 'root' ? { id: 0, fields: [] } : undefined);
  if (!entry) throw new InvalidArgumentError('--chown', `"${spec}": no group "${group}" in the image's /etc/group`, 'add the group in an earlier RUN, or give a numeric ID');
  return { uid, gid: entry.id };
}

/** Whether the spec names a user or group (and so needs the image's files). */
export function chownNeedsNames(spec: string): boolean {
  return spec.split(':').some((p) => p !== '' && !/^\d+$/.test(p));
}

/** `name:x:id:...` lines (passwd and group share the first three fields). */
function lookup(text: string | undefined, name: string): { id: number; fields: string[] } | undefined {
  for (const line of (text ?? '').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3 && /^\d+$/.test(fields[2]!)) return { id: Number(fields[2]), fields };
  }
  return undefined;
}
