import { Transform, type Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';

/** Docker's default detach sequence: Ctrl-P then Ctrl-Q. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * --detach-keys as Docker reads it (moby term.ToBytes): comma-separated keys, each one character or
 * `ctrl-X` with X one of a-z @ [ \ ] ^ _ (the control codes 0x00-0x1f).
 */
export function parseDetachKeys(text: string): Buffer {
  const out: number[] = [];
  for (const key of text.split(',').map((k) => k.trim())) {
    const ctrl = /^ctrl-(.)$/i.exec(key);
    if (ctrl) {
      const c = ctrl[1]!.toLowerCase();
      const code = c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 96 : '@[\\]^_'.indexOf(c) >= 0 ? [0, 27, 28, 29, 30, 31]['@[\\]^_'.indexOf(c)]! : -1;
      if (code < 0) throw badKeys(text, key);
      out.push(code);
    } else if (key.length === 1 && key.charCodeAt(0) < 128) {
      out.push(key.charCodeAt(0));
    } else {
      throw badKeys(text, key);
    }
  }
  return Buffer.from(out);
}

function badKeys(text: string, key: string): InvalidArgumentError {
  return new InvalidArgumentError('--detach-keys', `invalid detach keys (${text}): unknown character "${key}"`,
    'give comma-separated keys, each one character or ctrl-<a-z, @, [, \\, ], ^ or _>, e.g. ctrl-p,ctrl-q');
}

/**
 * The client's stdin with the detach sequence taken out (Docker's escape proxy): bytes that may begin the
 * sequence are held back until the next byte tells; the whole sequence calls `onDetach` and ends the
 * stream there, so the container never sees it; anything else is passed on as typed.
 */
export function escapeStdin(stdin: Readable, keys: Buffer, onDetach: () => void): Readable {
  let matched = 0;
  let done = false;
  const filter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (done) return cb();
      const out: number[] = [];
      for (const byte of chunk) {
        if (byte === keys[matched]) {
          matched++;
          if (matched === keys.length) {
            done = true;
            if (out.length) this.push(Buffer.from(out));
            stdin.unpipe(filter);
            onDetach();
            return cb();
          }
          continue;
        }
        out.push(...keys.subarray(0, matched));
        matched = byte === keys[0] ? 1 : 0;
        if (!matched) out.push(byte);
      }
      cb(null, out.length ? Buffer.from(out) : undefined);
    },
  });
  stdin.pipe(filter);
  return filter;
}
