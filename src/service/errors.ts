/**
 * Errors as the Engine API gives them: a status code and `{"message": ...}`. Clients branch on the status
 * (the docker CLI pulls on a 404 from create, compose treats 404 as gone) and some on the words ("No such
 * container", "No such image", "executable file not found"), so both follow Docker's.
 */
import {
  AlreadyExistsError, BadStateError, BerthError, CannotInvokeError, CommandNotFoundError, InvalidArgumentError, LockedError, NotFoundError,
  RegistryError,
} from '../errors.js';

/** A failure the service itself decides (bad request, unknown route), with Docker's status and words. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof AlreadyExistsError || err instanceof BadStateError || err instanceof LockedError) return 409;
  if (err instanceof InvalidArgumentError) return 400;
  if (err instanceof RegistryError) return err.reason === 'unauthorized' ? 401 : err.reason === 'not-found' ? 404 : 500;
  // Docker answers a start whose command cannot run with 400 ("OCI runtime create failed: ... executable file
  // not found"), and the docker CLI turns those words into exit 127 (not found) or 126 (cannot invoke).
  if (err instanceof CommandNotFoundError || err instanceof CannotInvokeError) return 400;
  return 500;
}

export function messageOf(err: unknown): string {
  if (err instanceof NotFoundError) {
    const what = { container: 'container', image: 'image', network: 'network', volume: 'volume', exec: 'exec instance' }[err.kind as string];
    if (what) return `No such ${what}: ${err.ref}`;
  }
  if (err instanceof CommandNotFoundError) {
    return `failed to create task for container: OCI runtime create failed: runc create failed: exec: "${err.command}": executable file not found in $PATH: unknown`;
  }
  if (err instanceof CannotInvokeError) return `failed to create task for container: OCI runtime create failed: exec: "${err.command}": permission denied: unknown`;
  if (err instanceof BerthError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
