/**
 * The client side of a hijacked attach or exec stream: the remote's frames (raw with a tty) to the caller's
 * stdout/stderr, the caller's stdin the other way, the caller's terminal size through the resize calls, and
 * Docker's detach keys, which the docker CLI also watches for itself (its escape proxy): the remote never
 * sees them, and the client knows at once that it detached rather than that the stream ended.
 */
import type { Duplex, Readable } from 'node:stream';
import { DEFAULT_DETACH_KEYS, escapeStdin, parseDetachKeys } from '../container/detach.js';
import type { RemoteError } from '../errors.js';
import type { StdioStreams, TerminalSize } from '../types.js';
import { FrameReader, type StreamKind } from './frames.js';

export interface HijackedStream {
  socket: Duplex;
  head: Buffer;
}

export interface PipeOptions {
  tty: boolean;
  io: StdioStreams;
  /** With a tty and stdin: the parsed detach keys (default ctrl-p,ctrl-q). */
  detachKeys?: Buffer;
  /** Sends the terminal's size (POST .../resize); called at once and after each change, with a tty only. */
  resize?: (size: TerminalSize) => Promise<unknown>;
}

/** The detach keys of an attach with a terminal and stdin, checked before anything is asked of the remote. */
export function detachKeysOf(text: string | undefined): Buffer {
  return parseDetachKeys(text ?? DEFAULT_DETACH_KEYS);
}

/**
 * Resolves when the stream has ended, or at once on the detach keys. `broken`: over ssh, the end was ssh
 * dying (killed, or the network gone), which the stream alone cannot tell from the remote's own end.
 */
export async function pipeStreams(conn: HijackedStream, opts: PipeOptions): Promise<{ detached: boolean; broken?: RemoteError }> {
  const { detached } = await pipeUntilEnd(conn, opts);
  if (detached) return { detached };
  const exited = (conn.socket as { exited?: Promise<RemoteError | undefined> }).exited;
  // ssh exits at once after a clean end; the bound only keeps a stuck ssh from holding the client.
  const broken = exited ? await Promise.race([exited, new Promise<undefined>((r) => { setTimeout(() => r(undefined), 3000).unref(); })]) : undefined;
  return broken ? { detached, broken } : { detached };
}

function pipeUntilEnd(conn: HijackedStream, opts: PipeOptions): Promise<{ detached: boolean }> {
  const { io, tty } = opts;
  const reader = new FrameReader(tty, (kind: StreamKind, payload) => (kind === 'stdout' ? io.stdout : io.stderr)?.write(payload));
  if (conn.head.length) reader.push(conn.head);
  conn.socket.on('data', (chunk: Buffer) => reader.push(chunk));
  let detached = false;
  const cleanups: Array<() => void> = [];
  let stdin: Readable | undefined = io.stdin;
  if (stdin && tty && opts.detachKeys) {
    const original = stdin;
    stdin = escapeStdin(original, opts.detachKeys, () => {
      detached = true;
      conn.socket.destroy();
    });
    cleanups.push(() => original.unpipe());
  }
  if (stdin) {
    const input = stdin;
    const onData = (chunk: Buffer) => { if (!conn.socket.destroyed) conn.socket.write(chunk); };
    // Half-close: the container sees the end of its stdin; its output still comes back.
    const onEnd = () => { if (!detached && !conn.socket.destroyed) conn.socket.end(); };
    input.on('data', onData);
    input.once('end', onEnd);
    cleanups.push(() => { input.off('data', onData); input.off('end', onEnd); });
  }
  if (tty && io.terminal && opts.resize) {
    const terminal = io.terminal;
    const resize = opts.resize;
    // One resize in flight at a time, the last size winning: a burst of SIGWINCH sends what the terminal ends at.
    let busy = false;
    let again = false;
    const send = () => {
      if (busy) { again = true; return; }
      const size = terminal.size();
      if (!size.rows || !size.columns) return;
      busy = true;
      void resize(size).catch(() => undefined).finally(() => {
        busy = false;
        if (again) { again = false; send(); }
      });
    };
    send();
    cleanups.push(terminal.onResize(send));
  }
  return new Promise((resolve) => {
    const done = () => {
      for (const c of cleanups.splice(0)) c();
      resolve({ detached });
    };
    if (conn.socket.destroyed || conn.socket.readableEnded) return done();
    conn.socket.once('end', done);
    conn.socket.once('close', done);
    conn.socket.once('error', () => done());
  });
}
