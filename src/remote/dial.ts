/**
 * One byte stream to the remote Engine API per call of `dial`: a unix or TCP socket, or the stdio of
 * `ssh ... -- berth system dial-stdio`. Each stream carries HTTP/1.1 (kept alive between requests by the
 * client's agent, or hijacked by an attach).
 *
 * ssh is the system's OpenSSH client, not a library: host keys are checked against the user's known_hosts
 * by ssh itself, the agent, keys, ProxyJump, ControlMaster and ~/.ssh/config work as they do for every
 * other tool of the user, and no cryptography lives in Berth (the docker CLI makes the same choice).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { RemoteError } from '../errors.js';
import { muxOptions } from './mux.js';
import { isTlsFailure, tlsRefusal } from './tls.js';
import type { HostTarget } from './uri.js';

/** How long a connection may take before the call fails naming the host (ssh's ConnectTimeout too). */
export const CONNECT_TIMEOUT_S = 10;

export interface Dialer {
  dial(): Duplex;
}

export function dialer(target: HostTarget, env: NodeJS.ProcessEnv = process.env): Dialer {
  if (target.kind === 'ssh') {
    let mux: string[] | undefined;
    return { dial: () => dialSsh(target, env, mux ??= muxOptions(target, env)) };
  }
  return { dial: () => dialSocket(target) };
}

function dialSocket(target: Exclude<HostTarget, { kind: 'ssh' }>): Duplex {
  const secure = target.kind === 'tcp' ? target.tls : undefined;
  const socket = target.kind === 'unix' ? net.connect(target.path)
    : secure
      // An IP literal gets no SNI (RFC 6066); the certificate's subjectAltName IP is what Node checks then.
      ? tls.connect({ host: target.host, port: target.port, ca: secure.ca, cert: secure.cert, key: secure.key, rejectUnauthorized: secure.verify, ...(net.isIP(target.host) ? {} : { servername: target.host }) })
      : net.connect(target.port, target.host);
  socket.setTimeout(CONNECT_TIMEOUT_S * 1000, () => {
    socket.destroy(new RemoteError('timeout', target.uri, `no answer from ${target.uri} in ${CONNECT_TIMEOUT_S}s`, 'check that berth system service runs there and listens on that address'));
  });
  socket.once(secure ? 'secureConnect' : 'connect', () => socket.setTimeout(0));
  // errno, not words: ENOENT/ECONNREFUSED/EHOSTUNREACH are "nothing there".
  const original = socket.destroy.bind(socket);
  socket.destroy = (err?: Error) => {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (err && !(err instanceof RemoteError) && code && ['ENOENT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EACCES'].includes(code)) {
      return original(new RemoteError('unreachable', target.uri, `cannot connect to ${target.uri}: ${code}`, target.kind === 'unix'
        ? 'start the service there (berth system service unix://PATH), or check the path and your permission on it'
        : 'start the service there (berth system service tcp://127.0.0.1:PORT), or check the address', { cause: err }));
    }
    // A refused certificate comes as an alert, often after the handshake looked done (TLS 1.3): by its code.
    if (err && !(err instanceof RemoteError) && isTlsFailure(code)) {
      return original(tlsRefusal(target.uri, err, !!secure));
    }
    return original(err);
  };
  return socket;
}

/**
 * What a machine or a context adds to ssh (src/machine writes them, `berth machine env` prints them):
 * the key to log in with, and the remote berth's path and root when they are not the remote user's defaults.
 */
export const SSH_ENV = { identity: 'BERTH_SSH_IDENTITY', berth: 'BERTH_SSH_BERTH', root: 'BERTH_SSH_ROOT' } as const;

/** A word the remote user's shell reads back as itself. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * ssh's options for `target`, without the host and command. BERTH_SSH_OPTS come first: ssh keeps the
 * first value it reads for an option, so the user's `-o ConnectTimeout=2` beats the default below. Split
 * on spaces (no quoting): keep paths plain.
 */
export function sshOptions(target: Extract<HostTarget, { kind: 'ssh' }>, env: NodeJS.ProcessEnv, mux: readonly string[] = []): string[] {
  const user = (env.BERTH_SSH_OPTS ?? '').split(/\s+/).filter(Boolean);
  const identity = env[SSH_ENV.identity];
  return [
    ...user, ...mux,
    // BatchMode: never prompt on the user's terminal (which belongs to the container's stream); an unknown
    // host key is then refused instead of asked about.
    '-o', 'BatchMode=yes', '-o', `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
    ...(identity ? ['-i', identity] : []),
    ...(target.port ? ['-p', String(target.port)] : []),
    ...(target.user ? ['-l', target.user] : []),
  ];
}

/** The remote command: the machine's berth and root when it has them, the remote user's PATH and defaults otherwise. */
export function sshArgs(target: Extract<HostTarget, { kind: 'ssh' }>, env: NodeJS.ProcessEnv, mux: readonly string[] = []): string[] {
  const root = env[SSH_ENV.root];
  return [...sshOptions(target, env, mux), '--', target.host, shellQuote(env[SSH_ENV.berth] || 'berth'), ...(root ? ['--root', shellQuote(root)] : []), 'system', 'dial-stdio'];
}

/** The remote host's words and status after ssh ended without an answer: the typed error. */
export function sshFailure(uri: string, host: string, status: number | null, stderr: string): RemoteError {
  const said = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ');
  // ssh speaks only text: its words are the only way to tell these apart (exit status 255 for all of them).
  if (status === 127 || /berth: (command )?not found/.test(stderr)) {
    return new RemoteError('no-berth', uri, `${host} has no berth command (ssh exited ${status ?? 'on a signal'}: ${said || 'command not found'})`,
      `install Berth on ${host}: berth machine create --driver generic --ssh-host ${host} NAME (then use --context NAME), or copy this project there, run scripts/setup.sh and put bin/berth.js on the remote user's PATH as "berth"`);
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/.test(stderr)) {
    return new RemoteError('host-key', uri, `the host key of ${host} is not one your known_hosts file trusts (${said})`,
      `check the key's fingerprint out of band, then add it: ssh-keyscan ${host} >> ~/.ssh/known_hosts (or log in once with ssh ${host})`);
  }
  if (/Permission denied/.test(stderr)) {
    return new RemoteError('auth', uri, `${host} refused every key offered (${said})`, 'add your public key to the remote user\'s authorized_keys, or load the right one into ssh-agent (or give -i KEY in BERTH_SSH_OPTS)');
  }
  if (/timed out/i.test(stderr)) {
    return new RemoteError('timeout', uri, `no answer from ${host} (${said})`, 'check the address and that sshd runs there and is reachable from here');
  }
  if (/No route to host|Connection refused|Could not resolve|Network is unreachable/.test(stderr)) {
    return new RemoteError('unreachable', uri, `cannot reach ${host} (${said})`, 'check the address and that sshd runs there and is reachable from here');
  }
  return new RemoteError('dropped', uri, `the ssh connection to ${host} ended (ssh exited ${status ?? 'on a signal'}${said ? `: ${said}` : ''})`,
    `try "ssh ${host} berth version" to see what the remote says`);
}

/** ssh's stdin and stdout as one Duplex; the socket methods http.Agent calls are the child's. */
class SshStream extends Duplex {
  private stderr = '';
  private outEnded = false;
  /** Settles when ssh has exited: with the typed reason when it failed. */
  readonly exited: Promise<RemoteError | undefined>;
  constructor(private readonly child: ChildProcess, uri: string, host: string) {
    super();
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout!.pause();
    });
    child.stdout!.on('end', () => {
      this.outEnded = true;
      this.push(null);
    });
    child.stderr!.on('data', (chunk: Buffer) => { this.stderr = (this.stderr + chunk.toString()).slice(-4096); });
    child.stdin!.on('error', () => { /* reported by the exit below */ });
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => resolve(new RemoteError('unreachable', uri, `cannot run ssh: ${err.message}`, 'install the OpenSSH client (apt-get install openssh-client)', { cause: err })));
      // Exit 0 is the remote's dial-stdio ending with the connection: nothing went wrong.
      child.on('close', (status, signal) => resolve(status === 0 || signal === 'SIGTERM' ? undefined : sshFailure(uri, host, status, this.stderr)));
    });
    void this.exited.then((failure) => { if (failure && !this.destroyed) this.destroy(failure); });
  }

  override _read(): void {
    this.child.stdout!.resume();
  }

  override _write(chunk: Buffer, enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.child.stdin!.write(chunk, enc, () => done());
  }

  override _final(done: () => void): void {
    this.child.stdin!.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // Once its stdout ended, ssh is exiting by itself, and its status tells why: it is left to finish.
    if (!this.outEnded && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    done(err);
  }

  // What http.Agent and ClientRequest call on a socket.
  setKeepAlive(): this { return this; }
  setNoDelay(): this { return this; }
  setTimeout(_ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    return this;
  }
  ref(): this {
    this.child.ref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { ref?(): void } | null)?.ref?.();
    return this;
  }
  unref(): this {
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) (s as unknown as { unref?(): void } | null)?.unref?.();
    return this;
  }
}

function dialSsh(target: Extract<HostTarget, { kind: 'ssh' }>, env: NodeJS.ProcessEnv, mux: readonly string[]): Duplex {
  const child = spawn('ssh', sshArgs(target, env, mux), { stdio: ['pipe', 'pipe', 'pipe'], env });
  return new SshStream(child, target.uri, target.host);
}
