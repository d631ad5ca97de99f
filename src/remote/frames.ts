/**
 * The Engine API's stream framing, read side: without a tty, output comes in 8-byte-headed frames
 * ([stream: 1 stdout, 2 stderr], 0, 0, 0, size as big-endian uint32, then the bytes); with a tty it is raw
 * (all stdout). The writer is src/service/streams.ts.
 */
import type { LogEntry } from '../types.js';

export type StreamKind = 'stdout' | 'stderr';

/** Feeds chunks in any cut; calls `onFrame` for each whole payload. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly tty: boolean, private readonly onFrame: (stream: StreamKind, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.tty) {
      if (chunk.length) this.onFrame('stdout', chunk);
      return;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const size = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + size) break;
      const kind = this.buf[0];
      const payload = this.buf.subarray(8, 8 + size);
      this.buf = this.buf.subarray(8 + size);
      // 0 is stdin (written back only with a tty), 3 the system stream of newer daemons: stdout's and stderr's only.
      if (kind === 1 || kind === 2) this.onFrame(kind === 1 ? 'stdout' : 'stderr', payload);
    }
  }

  /** Bytes of a frame cut off by the end of the stream. */
  get pending(): number {
    return this.buf.length;
  }
}

/**
 * Log entries out of the `timestamps=1` stream. Framed (no tty), each frame is one entry, as Docker's
 * daemon and Berth's service write them: "TIME LINE\n", or without the newline for a partial line. Raw
 * (tty), lines are cut at newlines, and what is left at the end without one is `partial`.
 */
export class LogLines {
  private rest = '';
  constructor(private readonly tty: boolean) {}

  push(stream: StreamKind, payload: Buffer): LogEntry[] {
    if (!this.tty) {
      const text = payload.toString('utf8');
      const whole = text.endsWith('\n');
      return [entry(stream, whole ? text.slice(0, -1) : text, !whole)];
    }
    const parts = (this.rest + payload.toString('utf8')).split('\n');
    this.rest = parts.pop()!;
    return parts.map((l) => entry(stream, l, false));
  }

  end(): LogEntry[] {
    const out = this.rest ? [entry('stdout', this.rest, true)] : [];
    this.rest = '';
    return out;
  }
}

function entry(stream: StreamKind, text: string, partial: boolean): LogEntry {
  const sp = text.indexOf(' ');
  const time = sp > 0 ? text.slice(0, sp) : '';
  // A line without a time in front (an engine that ignores timestamps=1) is kept whole.
  if (!/^\d{4}-\d\d-\d\dT/.test(time)) return { time: '', stream, line: text, partial };
  return { time, stream, line: text.slice(sp + 1), partial };
}
