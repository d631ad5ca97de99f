/**
 * The attach and exec stream: the connection is hijacked (HTTP upgrade to `tcp`, answered 101 UPGRADED),
 * or for a client that does not upgrade, the answer body itself. Without a tty, output is multiplexed in
 * Docker's 8-byte frames: [stream (1 stdout, 2 stderr), 0, 0, 0, size as big-endian uint32] then the bytes;
 * with a tty it is raw. Stdin is what the client sends after its request, until it half-closes.
 */
import { PassThrough, Writable, type Readable } from 'node:stream';
import type { Call } from './router.js';
import { compareVersions } from './versions.js';

export interface HijackedStreams {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** ends the answer (closes the hijacked connection) once every write is out */
  end(): Promise<void>;
  /** true once the client has gone away */
  readonly closed: () => boolean;
}

/** The 8-byte frame header of stream `kind` for `size` bytes. */
export function frameHeader(kind: 0 | 1 | 2, size: number): Buffer {
  const h = Buffer.alloc(8);
  h[0] = kind;
  h.writeUInt32BE(size, 4);
  return h;
}

export function hijack(call: Call, opts: { tty: boolean }): HijackedStreams {
  const contentType = opts.tty || compareVersions(call.version, '1.42') < 0 ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
  let sink: Writable;
  const stdin = new PassThrough();
  let gone = false;
  if (call.upgraded) {
    const { socket, head } = call.upgraded;
    socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    if (head.length) stdin.write(head);
    socket.pipe(stdin);
    socket.on('error', () => { gone = true; });
    socket.on('close', () => { gone = true; stdin.end(); });
    sink = socket;
  } else {
    const res = call.res!;
    res.writeHead(200, { 'Content-Type': contentType });
    res.flushHeaders();
    call.req.pipe(stdin);
    res.on('close', () => { gone = true; });
    sink = res;
  }
  const framed = (kind: 1 | 2) => new Writable({
    write(chunk: Buffer, _enc, done) {
      if (gone) return done();
      if (!opts.tty) sink.write(frameHeader(kind, chunk.length));
      sink.write(chunk, () => done());
    },
  });
  return {
    stdin,
    stdout: framed(1),
    stderr: framed(2),
    closed: () => gone,
    end: () => new Promise<void>((resolve) => {
      if (gone || sink.writableEnded) return resolve();
      sink.end(() => resolve());
    }),
  };
}
