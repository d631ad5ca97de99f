import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, RuntimeError } from '../../errors.js';
import type { EngineApi } from '../../api/types.js';
import { type Command, type Context, defineCommand } from '../command.js';

/** Docker's own socket: served with --docker-socket only while no Docker daemon listens there. */
const DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * The engine these commands serve: this machine's. Chosen remote (-H, a context), they would relay another
 * host's engine through a client that maps only part of the API: refused rather than half done.
 */
async function localEngine(ctx: Context, command: string): Promise<EngineApi> {
  const target = await ctx.target();
  if (target.host) {
    throw new InvalidArgumentError('--host', `${command} serves this machine's engine, not a remote one (${target.host}, chosen by ${target.source})`,
      `run "berth ${command}" on that host itself, or drop the remote engine`);
  }
  return ctx.engine();
}

const service = defineCommand({
  name: 'service', group: 'system',
  usage: '[OPTIONS] [URI...]', summary: 'Serve the Docker Engine API (default unix://RUNROOT/berth.sock) until idle',
  options: [
    { name: 'time', short: 't', type: 'string', help: 'Seconds without a request before the service exits; 0 never (default 5)' },
    { name: 'docker-socket', type: 'bool', help: `Also serve ${DOCKER_SOCKET} when no Docker daemon owns it` },
    { name: 'group', type: 'string', help: 'Group that may use the socket (mode 0660; default: berth, when it exists)' },
    { name: 'tls', type: 'bool', help: 'Serve tcp:// addresses over TLS (--tlscert, --tlskey); loopback only unless --tlsverify' },
    { name: 'tlsverify', type: 'bool', help: 'Serve tcp:// over TLS and require client certificates signed by --tlscacert' },
    { name: 'tlscacert', type: 'string', help: 'CA that signs the clients\' certificates (PEM)' },
    { name: 'tlscert', type: 'string', help: 'The server\'s certificate (PEM)' },
    { name: 'tlskey', type: 'string', help: 'The server\'s key (PEM)' },
  ],
  async action(ctx, o, uris) {
    const seconds = o.time === undefined ? 5 : Number(o.time);
    if (!Number.isInteger(seconds) || seconds < 0) throw new InvalidArgumentError('--time', `"${o.time}" is not a whole number of seconds`, 'e.g. --time 0 to never exit');
    const engine = await localEngine(ctx, 'system service');
    const list = uris.length ? [...uris] : [`unix://${path.join(engine.runroot, 'berth.sock')}`];
    if (o.dockerSocket) list.push(`unix://${DOCKER_SOCKET}`);
    const tls = o.tls || o.tlsverify ? serviceTls(o) : undefined;
    if (!tls && (o.tlscacert ?? o.tlscert ?? o.tlskey) !== undefined) throw new InvalidArgumentError('--tls', 'certificate files were given without --tls or --tlsverify', 'add --tlsverify (client certificates required) or --tls');
    const { serve } = await import('../../service/index.js');
    const running = await serve(engine, { uris: list, idleSeconds: seconds, group: o.group, ...(tls ? { tls } : {}) });
    ctx.stderr.write(`Serving the Docker Engine API on ${running.uris.join(', ')}${seconds ? ` until ${seconds}s without a request` : ''}\n`);
    const stop = ctx.onSignal(() => void running.close());
    try {
      await running.closed;
    } finally {
      stop();
    }
  },
});

function serviceTls(o: { tlsverify: boolean; tlscacert?: string; tlscert?: string; tlskey?: string }): { verify: boolean; ca?: string; cert: string; key: string } {
  if (!o.tlscert || !o.tlskey) throw new InvalidArgumentError(o.tlscert ? '--tlskey' : '--tlscert', 'is required with --tls/--tlsverify', 'give the server\'s certificate and key: --tlscert CERT.pem --tlskey KEY.pem');
  return { verify: o.tlsverify, ca: o.tlscacert, cert: o.tlscert, key: o.tlskey };
}

/**
 * `docker system dial-stdio`: the API over stdin and stdout, for a client that reached this host by ssh.
 *
 * Every connection of a client is its own ssh session and its own dial-stdio, yet Docker's API keeps state
 * between calls on different connections: an exec instance (create, start, inspect), a terminal that a
 * resize changes while another connection carries the stream. So the dial-stdio processes of one store
 * relay to one service of that store, on a socket in its runroot, which the first of them starts (in its
 * own session, so that ssh does not wait for it) and which exits after DIAL_SERVICE_IDLE_S without a call.
 * Where that service cannot be started (a store whose runroot this user cannot serve from), the connection
 * gets a private service of its own, as before.
 */
const DIAL_SERVICE_IDLE_S = 10;

const dialStdio = defineCommand({
  name: 'dial-stdio', group: 'system',
  usage: '', summary: 'Serve the Docker Engine API over standard input and output',
  options: [],
  maxArgs: 0,
  async action(ctx) {
    const engine = await localEngine(ctx, 'system dial-stdio');
    const shared = path.join(engine.runroot, 'dial-stdio.sock');
    let conn = await connectTo(shared);
    if (!conn) {
      await startSharedService(ctx, engine, shared);
      conn = await connectTo(shared);
    }
    if (conn) return relay(ctx, conn);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-dial-'));
    await fsp.chmod(dir, 0o700);
    try {
      const { serve } = await import('../../service/index.js');
      const running = await serve(engine, { uris: [`unix://${path.join(dir, 'api.sock')}`], idleSeconds: 0 });
      const own = await connectTo(path.join(dir, 'api.sock'));
      if (!own) throw new RuntimeError('dial-stdio could not reach its own service', 'run it again; berth -D tells more');
      await relay(ctx, own);
      await running.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  },
});

function connectTo(file: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const conn = net.connect(file);
    conn.once('connect', () => resolve(conn));
    conn.once('error', () => resolve(undefined));
  });
}

/** stdin to the service (its end is the client's half-close), the service to stdout, until it closes. */
async function relay(ctx: Context, conn: net.Socket): Promise<void> {
  ctx.stdin.pipe(conn);
  conn.pipe(ctx.stdout, { end: false });
  await new Promise<void>((resolve) => conn.on('close', () => resolve()));
}

/**
 * `berth system service` on `file`, detached: resolves once it answers there, or when it exited (another
 * dial-stdio won the race, which is as good; or it could not serve, and the caller falls back).
 */
async function startSharedService(ctx: Context, engine: EngineApi, file: string): Promise<void> {
  const config = ctx.globals.config ? ['--config', ctx.globals.config] : [];
  const child = spawn(process.execPath, [path.resolve(process.argv[1] ?? 'berth'), '--root', engine.root, '--runroot', engine.runroot, ...config,
    'system', 'service', '-t', String(DIAL_SERVICE_IDLE_S), `unix://${file}`], { detached: true, stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => { exited = true; });
  child.once('error', () => { exited = true; });
  for (let i = 0; i < 200 && !exited; i++) {
    const probe = await connectTo(file);
    if (probe) {
      probe.destroy();
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  child.unref();
}

export const serviceCommands: readonly Command[] = [service, dialStdio];
