import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
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
  ],
  async action(ctx, o, uris) {
    const seconds = o.time === undefined ? 5 : Number(o.time);
    if (!Number.isInteger(seconds) || seconds < 0) throw new InvalidArgumentError('--time', `"${o.time}" is not a whole number of seconds`, 'e.g. --time 0 to never exit');
    const engine = await localEngine(ctx, 'system service');
    const list = uris.length ? [...uris] : [`unix://${path.join(engine.runroot, 'berth.sock')}`];
    if (o.dockerSocket) list.push(`unix://${DOCKER_SOCKET}`);
    const { serve } = await import('../../service/index.js');
    const running = await serve(engine, { uris: list, idleSeconds: seconds, group: o.group });
    ctx.stderr.write(`Serving the Docker Engine API on ${running.uris.join(', ')}${seconds ? ` until ${seconds}s without a request` : ''}\n`);
    const stop = ctx.onSignal(() => void running.close());
    try {
      await running.closed;
    } finally {
      stop();
    }
  },
});

/**
 * `docker system dial-stdio`: the API over stdin and stdout, for a client that reached this host by ssh.
 * The service listens on a private socket for this one connection and stops when it ends.
 */
const dialStdio = defineCommand({
  name: 'dial-stdio', group: 'system',
  usage: '', summary: 'Serve the Docker Engine API over standard input and output',
  options: [],
  maxArgs: 0,
  async action(ctx) {
    const engine = await localEngine(ctx, 'system dial-stdio');
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-dial-'));
    await fsp.chmod(dir, 0o700);
    try {
      const { serve } = await import('../../service/index.js');
      const running = await serve(engine, { uris: [`unix://${path.join(dir, 'api.sock')}`], idleSeconds: 0 });
      const conn = net.connect(path.join(dir, 'api.sock'));
      await new Promise<void>((resolve, reject) => { conn.once('connect', resolve); conn.once('error', reject); });
      ctx.stdin.pipe(conn);
      conn.pipe(ctx.stdout, { end: false });
      await new Promise<void>((resolve) => conn.on('close', () => resolve()));
      await running.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  },
});

export const serviceCommands: readonly Command[] = [service, dialStdio];
