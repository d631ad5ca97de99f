/**
 * Berth's error family. The class is chosen where the failure happens, never by parsing text.
 * Every error names the object it is about (`message`) and says what to do (`hint`).
 * `exitCode` follows Docker: 125 the engine failed, 126 the command could not be invoked,
 * 127 the command was not found. The CLI maps classes to exit codes in one table (cli/exit.ts).
 */
export type ObjectKind = 'container' | 'image' | 'network' | 'volume' | 'layer' | 'snapshot' | 'blob' | 'file' | 'device' | 'user' | 'group' | 'exec' | 'context' | 'machine';

export abstract class BerthError extends Error {
  abstract readonly code: string;
  readonly exitCode: 125 | 126 | 127 = 125;
  constructor(message: string, readonly hint: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class NotFoundError extends BerthError {
  readonly code = 'NOT_FOUND';
  constructor(readonly kind: ObjectKind, readonly ref: string, hint?: string, options?: ErrorOptions) {
    super(`no such ${kind}: ${ref}`, hint ?? listHint(kind), options);
  }
}

export class AlreadyExistsError extends BerthError {
  readonly code = 'ALREADY_EXISTS';
  constructor(readonly kind: ObjectKind, readonly ref: string, hint?: string, options?: ErrorOptions) {
    super(`${kind} ${ref} already exists`, hint ?? `pick another name, or remove the existing ${kind} first`, options);
  }
}

/** A user-supplied value is malformed or out of range. `field` names the flag or API field. */
export class InvalidArgumentError extends BerthError {
  readonly code = 'INVALID_ARGUMENT';
  constructor(readonly field: string, message: string, hint?: string, options?: ErrorOptions) {
    super(`invalid ${field}: ${message}`, hint ?? `check the value given for ${field}`, options);
  }
}

/** The object exists but is in the wrong state for the request (rm of a running container, ...). */
export class BadStateError extends BerthError {
  readonly code = 'BAD_STATE';
  constructor(message: string, hint: string, options?: ErrorOptions) {
    super(message, hint, options);
  }
}

/** Stored data failed a check: digest mismatch, truncated stream, unsafe path in a layer. */
export class CorruptError extends BerthError {
  readonly code = 'CORRUPT';
  constructor(message: string, hint: string, options?: ErrorOptions) {
    super(message, hint, options);
  }
}

/** Another process holds a lock for too long. */
export class LockedError extends BerthError {
  readonly code = 'LOCKED';
  constructor(readonly path: string, readonly holder: string) {
    super(`${path} is locked by ${holder}`, 'wait for the other berth command to finish, or stop it');
  }
}

/** A host facility failed: runc, conmon, iptables, ip, mount. Carries the command and its stderr. */
export class RuntimeError extends BerthError {
  readonly code = 'RUNTIME';
  constructor(message: string, hint: string, options?: ErrorOptions & { command?: string; stderr?: string; exitCode?: number }) {
    super(message, hint, options);
    this.command = options?.command;
    this.stderr = options?.stderr;
    this.commandExitCode = options?.exitCode;
  }
  readonly command: string | undefined;
  readonly stderr: string | undefined;
  readonly commandExitCode: number | undefined;
}

/**
 * A build step failed: a RUN whose command exited non-zero. The message is Docker's; `output` holds the
 * command's last lines, so the failure can be read without scrolling back.
 */
export class BuildStepError extends BerthError {
  readonly code = 'BUILD_STEP';
  constructor(readonly step: number, readonly command: string, readonly commandExitCode: number, readonly output: string[]) {
    super(`step ${step}: the command '${command}' returned a non-zero code: ${commandExitCode}${output.length ? `\n${output.map((l) => '  | ' + l).join('\n')}` : ''}`,
      'fix the command in the Dockerfile; the lines above are the end of its output');
  }
}

/**
 * A registry refused or failed a request. `reason` is chosen where the failure is seen (an HTTP status,
 * a socket error, a check of what came back), never by parsing text; `registry` and `reference` name
 * what was asked of whom. Never carries credentials.
 */
export type RegistryFailure =
  | 'unauthorized' // 401: no or wrong credentials
  | 'denied' // 403, or 401 on push after login: no permission
  | 'not-found' // unknown repository, tag, manifest or blob
  | 'unreachable' // connection refused, DNS, reset
  | 'timeout' // no answer in time
  | 'tls' // certificate not trusted, or TLS spoken to a plain-HTTP server
  | 'protocol' // an answer the protocol does not allow: bad digest, size, media type, oversized body
  | 'unavailable'; // 429/5xx after retries

export class RegistryError extends BerthError {
  readonly code = 'REGISTRY';
  constructor(readonly reason: RegistryFailure, readonly registry: string, readonly reference: string, message: string, hint: string,
    options?: ErrorOptions & { status?: number }) {
    super(`${reference ? `${reference}: ` : ''}${message} (registry ${registry})`, hint, options);
    this.status = options?.status;
  }
  readonly status: number | undefined;
}

/**
 * A global-scope network (overlay, flannel) was asked for and no cluster store is set. An
 * InvalidArgumentError (the request cannot work as configured); its message is the whole sentence, not
 * "invalid --cluster-store: ...", since nothing invalid was given.
 */
export class ClusterNotConfiguredError extends InvalidArgumentError {
  constructor(what = 'multi-host networks') {
    super('--cluster-store', '', 'give every host of the cluster the same --cluster-store, and its own --cluster-advertise address');
    this.message = `${what} need a cluster store: set --cluster-store etcd://HOST:PORT (or BERTH_CLUSTER_STORE, or "cluster-store" in the config file)`;
  }
}

/**
 * The cluster store (etcd) did not answer: every endpoint refused the connection, reset it or let the
 * deadline pass. `endpoints` are the URLs tried, in order. `outcomeUnknown`: a change was sent and the
 * answer was lost, so it may or may not have been applied (the caller re-reads before trying again).
 */
export class ClusterUnavailableError extends BerthError {
  readonly code = 'CLUSTER_UNAVAILABLE';
  constructor(readonly endpoints: readonly string[], readonly reason: string, options?: ErrorOptions & { outcomeUnknown?: boolean }) {
    super(`the cluster store did not answer (${endpoints.join(', ')}): ${reason}${options?.outcomeUnknown ? '; the change may or may not have been applied' : ''}`,
      'check that etcd runs and listens on those addresses (etcdctl --endpoints ... endpoint health), that this host reaches them, and the TLS options (kv.cacertfile, kv.certfile, kv.keyfile) if the URI is etcds://',
      options);
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
  }
  readonly outcomeUnknown: boolean;
}

/**
 * The cluster store answered with an error. `reason` comes from the gRPC status code etcd's gateway
 * returns (never from its text); `detail` is etcd's own message ("etcdserver: requested lease not found").
 */
export type ClusterFailure =
  | 'lease-not-found' // NOT_FOUND: the lease expired or was revoked
  | 'unauthenticated' // wrong user or password, or a token etcd no longer takes
  | 'permission' // PERMISSION_DENIED: the user's role does not cover the key
  | 'compacted' // OUT_OF_RANGE: the revision asked for was compacted away
  | 'invalid' // INVALID_ARGUMENT and FAILED_PRECONDITION: a request etcd refuses
  | 'protocol' // an answer that is not etcd's JSON
  | 'other';

export class ClusterStoreError extends BerthError {
  readonly code = 'CLUSTER_STORE';
  constructor(readonly reason: ClusterFailure, readonly endpoint: string, readonly detail: string, hint: string, options?: ErrorOptions & { grpcCode?: number }) {
    super(`the cluster store (${endpoint}) refused the request: ${detail}`, hint, options);
    this.grpcCode = options?.grpcCode;
  }
  readonly grpcCode: number | undefined;
  /** A lease that is gone is what revoking it wanted (CNI DEL semantics for teardown). */
  get alreadyGone(): boolean {
    return this.reason === 'lease-not-found';
  }
}

/**
 * A remote engine (`-H`, BERTH_HOST, a context) could not be used. `reason` is chosen where the failure is
 * seen: the socket's errno, ssh's exit status and the words OpenSSH prints (it speaks only text), an answer
 * that is not the Engine API, or a method the remote client does not map yet (`unsupported`).
 */
export type RemoteFailure =
  | 'unreachable' // refused, no route, no such socket
  | 'timeout' // no answer in time
  | 'host-key' // ssh refused the host key (unknown or changed)
  | 'auth' // ssh: no key the server accepts
  | 'no-berth' // ssh reached the host, which has no berth on its PATH
  | 'dropped' // the connection ended in the middle of an answer
  | 'protocol' // the answer is not the Engine API's
  | 'tls' // the TLS handshake failed, or a peer refused the other's certificate
  | 'unsupported'; // a call the remote client does not map yet

export class RemoteError extends BerthError {
  readonly code = 'REMOTE';
  constructor(readonly reason: RemoteFailure, readonly host: string, message: string, hint: string, options?: ErrorOptions) {
    super(message, hint, options);
  }
}

/** The container's command exists but cannot be executed (permission, not a binary, a directory). */
export class CannotInvokeError extends BerthError {
  readonly code = 'CANNOT_INVOKE';
  override readonly exitCode = 126 as const;
  constructor(readonly command: string, reason: string, options?: ErrorOptions) {
    super(`cannot invoke ${command}: ${reason}`, 'check that the file is an executable for this machine and has its x bit set', options);
  }
}

/** The container's command does not exist in its filesystem or PATH. */
export class CommandNotFoundError extends BerthError {
  readonly code = 'COMMAND_NOT_FOUND';
  override readonly exitCode = 127 as const;
  constructor(readonly command: string, options?: ErrorOptions) {
    super(`command not found in the container: ${command}`, 'check the image contents and PATH, or give the full path', options);
  }
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}

function listHint(kind: ObjectKind): string {
  switch (kind) {
    case 'container': return 'list what exists with "berth ps -a"';
    case 'image': return 'list what exists with "berth images"';
    case 'network': return 'list what exists with "berth network ls"';
    case 'volume': return 'list what exists with "berth volume ls"';
    case 'context': return 'list what exists with "berth context ls"';
    case 'machine': return 'list what exists with "berth machine ls"';
    default: return `check the ${kind} name`;
  }
}

/**
 * "Already gone" is success for teardown (CNI DEL semantics): a missing file, link, netns,
 * runc container or iptables rule. Errors opt in by class or errno, never by message text —
 * except for external tools that only speak text, whose wrappers set `alreadyGone` themselves.
 */
export function isAlreadyGone(err: unknown): boolean {
  if (err instanceof NotFoundError) return true;
  const e = err as { code?: unknown; alreadyGone?: unknown } | null;
  return !!e && (e.code === 'ENOENT' || e.code === 'ESRCH' || e.alreadyGone === true);
}

/**
 * Teardown runs every step; "already gone" counts as done; real failures are gathered into one
 * AggregateError so that nothing is silently left behind.
 */
export async function runTeardown(steps: ReadonlyArray<() => Promise<void>>): Promise<void> {
  const failed: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      if (!isAlreadyGone(err)) failed.push(err);
    }
  }
  if (failed.length === 1) throw failed[0];
  if (failed.length) throw new AggregateError(failed, 'teardown left resources behind: ' + failed.map((f) => (f as Error).message).join('; '));
}
