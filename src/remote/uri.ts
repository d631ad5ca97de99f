/**
 * The host URIs `-H`, BERTH_HOST and contexts take, Docker's forms: `unix:///PATH`, `tcp://HOST:PORT` and
 * `ssh://[USER@]HOST[:PORT]`. Parsed once, at the edge, into a typed target the dialer switches on.
 */
import { InvalidArgumentError } from '../errors.js';
import type { ClientTls } from './tls.js';

export type HostTarget =
  | { kind: 'unix'; uri: string; path: string }
  | { kind: 'tcp'; uri: string; host: string; port: number; tls?: ClientTls }
  | { kind: 'ssh'; uri: string; user?: string; host: string; port?: number };

const HINT = 'give unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]';

function bad(uri: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError('host', `"${uri}": ${why}`, HINT);
}

function port(uri: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw bad(uri, `port "${text}" is not a number from 1 to 65535`);
  return n;
}

export function parseHost(uri: string): HostTarget {
  const m = /^([a-z]+):\/\/(.*)$/.exec(uri);
  if (!m) throw bad(uri, 'not a URI with a scheme');
  const [, scheme, rest] = m as unknown as [string, string, string];
  switch (scheme) {
    case 'unix': {
      if (!rest.startsWith('/')) throw bad(uri, 'the socket path must be absolute (unix:///run/berth/berth.sock)');
      return { kind: 'unix', uri, path: rest };
    }
    case 'tcp': {
      const t = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)\/?$/.exec(rest);
      if (!t) throw bad(uri, 'expected tcp://HOST:PORT');
      return { kind: 'tcp', uri, host: t[1]!.replace(/^\[|\]$/g, ''), port: port(uri, t[2])! };
    }
    case 'ssh': {
      // Docker refuses a path or query here (nothing would read it); so does Berth.
      const s = /^(?:([A-Za-z0-9._][A-Za-z0-9._-]*)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d+))?\/?$/.exec(rest);
      if (!s) throw bad(uri, 'expected ssh://[USER@]HOST[:PORT], without a path');
      return { kind: 'ssh', uri, host: s[2]!.replace(/^\[|\]$/g, ''), ...(s[1] ? { user: s[1] } : {}), ...(s[3] ? { port: port(uri, s[3]) } : {}) };
    }
    default:
      throw bad(uri, `the scheme "${scheme}" is not one Berth speaks`);
  }
}
