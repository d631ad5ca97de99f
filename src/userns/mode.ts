import { InvalidArgumentError } from '../errors.js';

/** podman's default size of an auto range: 65536 ids, uid 0 to nobody (65534) and one more. */
export const DEFAULT_AUTO_SIZE = 65536;

/**
 * --userns, in podman's words. `auto` = a fresh range of its own for each container; `private` with no
 * --uidmap is podman's auto too (for root podman also picks a fresh range), so it is kept as its own word
 * only for display; `keep-id` maps the calling user onto itself and means something only rootless.
 */
export type UsernsMode =
  | { kind: 'host' }
  | { kind: 'auto'; size: number }
  | { kind: 'private'; size: number }
  | { kind: 'keep-id' };

export function parseUsernsMode(text: string): UsernsMode {
  const [kind = '', opts] = splitOnce(text, ':');
  if (kind === 'host' && opts === undefined) return { kind: 'host' };
  if (kind === 'keep-id') return { kind: 'keep-id' };
  if (kind === 'auto' || kind === 'private') {
    let size = DEFAULT_AUTO_SIZE;
    for (const opt of opts === undefined ? [] : opts.split(',')) {
      const [key, value = ''] = splitOnce(opt, '=');
      if (key !== 'size') throw new InvalidArgumentError('--userns', `unknown option "${key}" of ${kind}`, `write --userns ${kind}:size=N`);
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 0x7fffffff) {
        throw new InvalidArgumentError('--userns', `size "${value}" is not a whole number of ids of at least 1`, `write e.g. --userns ${kind}:size=65536`);
      }
      size = Number(value);
    }
    return { kind, size };
  }
  throw new InvalidArgumentError('--userns', `"${text}" is not a user namespace mode`, 'use host, auto[:size=N], private or keep-id');
}

export function formatUsernsMode(mode: UsernsMode): string {
  if (mode.kind === 'auto' || mode.kind === 'private') return mode.size === DEFAULT_AUTO_SIZE ? mode.kind : `${mode.kind}:size=${mode.size}`;
  return mode.kind;
}

function splitOnce(text: string, sep: string): [string, string | undefined] {
  const i = text.indexOf(sep);
  return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + 1)];
}
