import type { ServerResponse } from 'node:http';
import { jsonLines } from './http.js';

/**
 * A JSON-lines answer whose headers wait for its first line, as dockerd's pull, push, load and build do
 * (ioutils.WriteFlusher): a failure before anything was written is still a plain status and
 * `{"message"}` (404 for an unknown image, 401 for a refused login), one after it is an `{"error"}` line.
 */
export class LazyLines {
  private lines: ReturnType<typeof jsonLines> | undefined;
  constructor(private readonly res: ServerResponse) {}

  write(obj: unknown): void {
    this.lines ??= jsonLines(this.res);
    this.lines.write(obj);
  }

  /** Ends the answer after a failure: rethrows it when nothing was written yet (the core answers it). */
  fail(err: unknown): void {
    if (!this.lines) throw err;
    this.lines.fail(err);
    this.lines.end();
  }

  end(): void {
    this.lines ??= jsonLines(this.res);
    this.lines.end();
  }
}

/** `{"stream": "text\n"}` lines, one per line of `text`, as the classic builder and load write them. */
export function streamText(out: LazyLines, text: string): void {
  for (const line of text.split('\n')) out.write({ stream: `${line}\n` });
}
