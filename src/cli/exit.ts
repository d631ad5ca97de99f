/**
 * The one table from failures to exit codes, as Docker picks them:
 * - flag errors 125; wrong argument counts and unknown commands 1 (docker 28 does both);
 * - run/create: every engine failure is 125, except a command that cannot be invoked (126) or is not
 *   found (127): scripts tell "the engine broke" from "the container's command failed" this way;
 * - exec: 126/127 for the command, 1 for the rest (no such container, not running);
 * - every other command: 1.
 */
import { isBerthError } from '../errors.js';
import { UsageError } from './parser.js';

type Policy = 'engine' | 'invoke' | 'plain';

const POLICY: Record<string, Policy> = {
  run: 'engine',
  create: 'engine',
  // The issue asks for 125 on every pull/push failure (docker itself exits 1 there).
  pull: 'engine',
  push: 'engine',
  exec: 'invoke',
};

/** `command` is the command's own name (`run` for both `berth run` and `berth container run`). */
export function exitCodeFor(err: unknown, command: string | undefined): number {
  if (err instanceof UsageError) return err.exitCode;
  const policy = (command && POLICY[command]) || 'plain';
  if (policy === 'engine') return isBerthError(err) ? err.exitCode : 125;
  if (policy === 'invoke' && isBerthError(err) && err.exitCode !== 125) return err.exitCode;
  return 1;
}
