import type { Writable } from 'node:stream';
import { isBerthError } from '../errors.js';
import type { Context } from './command.js';

/**
 * `Error: <message>` and the hint on the next line; each part of an AggregateError on its own.
 * Stacks of errors Berth did not expect are shown only at --log-level debug.
 */
export function printError(stderr: Writable, err: unknown, debug: boolean): void {
  if (err instanceof AggregateError && err.errors.length) {
    for (const e of err.errors) printError(stderr, e, debug);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  stderr.write(`Error: ${message}\n`);
  if (isBerthError(err)) {
    if (err.hint) stderr.write(`Hint: ${err.hint}\n`);
    if (debug && err.cause) stderr.write(`Caused by: ${String((err.cause as Error).stack ?? err.cause)}\n`);
  } else if (debug && err instanceof Error && err.stack) {
    stderr.write(`${err.stack}\n`);
  }
}

/**
 * Docker's way with `stop A B C`: do each, print the ref of each success, report each failure and go on;
 * exit 1 when any failed.
 */
export async function forEachRef(ctx: Context, refs: readonly string[], op: (ref: string) => Promise<string | void>): Promise<number> {
  let failed = 0;
  for (const ref of refs) {
    try {
      const out = await op(ref);
      ctx.print(out ?? ref);
    } catch (err) {
      failed++;
      printError(ctx.stderr, err, ctx.globals.logLevel === 'debug');
    }
  }
  return failed ? 1 : 0;
}

/** Docker's prune prompt. Anything but y/yes (or an empty stdin) is a no. */
export async function confirm(ctx: Context, warning: string): Promise<boolean> {
  ctx.stdout.write(`WARNING! ${warning}\nAre you sure you want to continue? [y/N] `);
  const answer = await readLine(ctx.stdin);
  return /^y(es)?$/i.test(answer.trim());
}

export function readLine(stream: Context['stdin']): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      stream.off('data', onData);
      stream.off('end', done);
      stream.pause();
      resolve(text);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.includes('\n')) done();
    };
    stream.on('data', onData);
    stream.on('end', done);
  });
}
