/**
 * Mapping of runc's "could not start the process" failures to Docker's 126/127 errors.
 *
 * runc only reports these as text (its exit code is 1 for create and 255 for exec, whatever the cause),
 * so this is the one place where Berth reads an error message to pick an error class, as STYLE.md
 * allows for tools that only speak text. The texts are Go's os/exec and syscall error strings that
 * runc's init wraps as `exec: "CMD": <reason>` (runc 1.1 libcontainer/standard_init_linux.go and
 * setns_init_linux.go); Docker's daemon maps the same strings to the same codes.
 */
import { CannotInvokeError, CommandNotFoundError } from '../errors.js';

const NOT_FOUND = [/executable file not found in \$PATH/, /no such file or directory/];
const CANNOT_INVOKE = [/permission denied/, /exec format error/, /is a directory/, /not a directory/];

/** Returns the 126/127 error the text describes, or undefined for any other runtime failure. */
export function invokeErrorFromText(text: string, fallbackCommand: string): CannotInvokeError | CommandNotFoundError | undefined {
  // Only the process-start failure counts; other "no such file" errors (a missing mount source) are engine errors.
  const m = /exec: "((?:[^"\\]|\\.)*)": ([^\n"]*)/.exec(text) ?? /exec ((?:\/|\.)[^:\n]*): ([^\n"]*)/.exec(text);
  if (!m) return undefined;
  const command = m[1] ? m[1].replace(/\\(.)/g, '$1') : fallbackCommand;
  const reason = m[2] ?? '';
  if (NOT_FOUND.some((re) => re.test(reason))) return new CommandNotFoundError(command);
  if (CANNOT_INVOKE.some((re) => re.test(reason))) return new CannotInvokeError(command, reason.trim());
  return undefined;
}
