/** Raw upgraded connections to the service (what the docker CLI's hijack does), for the tests. */
import net from 'node:net';

export interface RawStream {
  socket: net.Socket;
  /** everything received after the 101 answer's headers */
  text(): string;
  /** the same, as bytes (multiplexed frames) */
  bytes(): Buffer;
  /** the service ended its side */
  ended(): boolean;
  /** the status line and headers */
  head(): string;
}

export function rawUpgrade(socketPath: string, p: string, body?: unknown): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath, allowHalfOpen: true });
    const data = body === undefined ? '' : JSON.stringify(body);
    let buf = Buffer.alloc(0);
    let headEnd = -1;
    let ended = false;
    socket.on('end', () => { ended = true; });
    socket.on('error', reject);
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (headEnd < 0) {
        headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd >= 0) {
          resolve({
            socket, head: () => buf.subarray(0, headEnd).toString('utf8'), ended: () => ended,
            bytes: () => buf.subarray(headEnd + 4), text: () => buf.subarray(headEnd + 4).toString('utf8'),
          });
        }
      }
    });
    socket.write(`POST ${p} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n`
      + (data ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n` : '') + `\r\n${data}`);
  });
}

export async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Docker's multiplexed frames as [stream, text] pairs (sort them to compare: stdout and stderr are two pipes, whose order between them is not kept). */
export function frames(buf: Buffer): [number, string][] {
  const out: [number, string][] = [];
  for (let i = 0; i + 8 <= buf.length;) {
    const size = buf.readUInt32BE(i + 4);
    out.push([buf[i]!, buf.subarray(i + 8, i + 8 + size).toString('utf8')]);
    i += 8 + size;
  }
  return out;
}
