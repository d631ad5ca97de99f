import type { Writable } from 'node:stream';
import { isBerthError } from '../errors.js';
import type { Context } from './command.js';
import { limited } from '../util/limit.js';

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
 * exit 1 when any failed. With `parallel`, as the docker CLI's rm, stop, kill, pause and unpause: the
 * operations overlap (they mostly wait on runc, mounts and locks, not on our CPU), and their results are
 * still printed in the order of the arguments.
 */
export async function forEachRef(ctx: Context, refs: readonly string[], op: (ref: string) => Promise<string | void>,
  opts: { parallel?: number } = {}): Promise<number> {
  const results = limited(refs, opts.parallel ?? 1, op);
  // A later operation may fail while an earlier one is awaited: handled here, reported in its turn below.
  for (const r of results) r.catch(() => undefined);
  let failed = 0;
  for (const [i, ref] of refs.entries()) {
    try {
      ctx.print((await results[i]!) ?? ref);
    } catch (err) {
      failed++;
      printError(ctx.stderr, err, ctx.globals.logLevel === 'debug');
    }
  }
  return failed ? 1 : 0;
}

/** How many of a multi-container command's operations run at once (the docker CLI allows 50). */
export const PARALLEL_REFS = 8;

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
