import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, promises as fsp } from 'node:fs';
import net from 'node:net';
import { BadStateError, RuntimeError } from '../errors.js';
import { run } from '../util/exec.js';
import { processTag, tagAlive } from '../util/liveness.js';
import type { PublishedPort } from './types.js';

/**
 * Rootless networking (issue 18): each container's netns gets a slirp4netns, a user-mode TCP/IP stack that
 * runs in the host's netns as the user and gives the container 10.0.2.100/24 on tap0, the gateway 10.0.2.2
 * and a DNS forwarder 10.0.2.3. Ports are published through its API socket (add_hostfwd). Chosen over pasta
 * because Debian 12 ships it and every published port is one call on a socket we own, with no helper of
 * ours; pasta is faster for bulk traffic and may replace it behind this module.
 */
export const SLIRP = { address: '10.0.2.100', prefixLength: 24, gateway: '10.0.2.2', dns: '10.0.2.3', interface: 'tap0', mtu: 65520 } as const;

/** What detach needs to stop it: recorded in the sandbox before it can leak. */
export interface SlirpRecord {
  /** "pid starttime" */
  tag: string;
  apiSocket: string;
}

const TIMEOUT = 10_000;
const TUN = '/dev/net/tun';

/** A new netns pinned at `file` (unshare binds it there; the runroot is ours, in our mount namespace). */
export async function createNetns(file: string): Promise<void> {
  await fsp.writeFile(file, '', { flag: 'a', mode: 0o600 });
  await run('unshare', [`--net=${file}`, 'true'], { timeout: TIMEOUT });
}

/**
 * Starts slirp4netns for the netns at `ns.netns`, in its own session so that it outlives this command and
 * Ctrl-C, and waits until it has configured tap0 (--ready-fd). `onStart` records it before the wait.
 * `ns.userns`: the user namespace owning that netns, which slirp4netns joins first (--userns-path).
 */
export async function startSlirp(ns: { netns: string; userns?: string }, apiSocket: string, logFile: string, onStart: (rec: SlirpRecord) => Promise<void>): Promise<SlirpRecord> {
  try {
    accessSync(TUN, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new RuntimeError(`slirp4netns cannot open ${TUN}: ${(err as NodeJS.ErrnoException).code}`,
      `make it usable by every user as udev does (as root: chmod 0666 ${TUN}, or scripts/setup.sh --rootless-user NAME), or run with --network none`, { cause: err });
  }
  await fsp.rm(apiSocket, { force: true });
  const log = openSync(logFile, 'a', 0o600);
  let child;
  try {
    child = spawn('slirp4netns', [
      '--configure', `--mtu=${SLIRP.mtu}`, '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp',
      `--api-socket=${apiSocket}`, '--ready-fd=3', ...(ns.userns ? [`--userns-path=${ns.userns}`] : []), '--netns-type=path', ns.netns, SLIRP.interface,
    ], { detached: true, stdio: ['ignore', log, log, 'pipe'] });
  } finally {
    closeSync(log);
  }
  const started = await new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new RuntimeError(`cannot start slirp4netns: ${err.message}`, 'install it: apt-get install slirp4netns', { cause: err })));
    child.once('spawn', () => resolve(child.pid!));
  });
  const rec = { tag: processTag(started), apiSocket };
  await onStart(rec);
  const ready = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new RuntimeError(`slirp4netns did not configure ${ns.netns} in ${TIMEOUT / 1000} s`, `see ${logFile}`)), TIMEOUT);
      ready.once('data', () => { clearTimeout(timer); resolve(); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new RuntimeError(`slirp4netns exited with ${code} before it was ready`, `see ${logFile}`)); });
    });
  } finally {
    ready.destroy();
    child.removeAllListeners('exit');
    child.unref();
  }
  return rec;
}

/** Idempotent: a slirp4netns already gone is success. */
export async function stopSlirp(rec: SlirpRecord): Promise<void> {
  if (tagAlive(rec.tag)) {
    try {
      process.kill(Number(rec.tag.split(' ')[0]), 'SIGTERM');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  await fsp.rm(rec.apiSocket, { force: true });
}

/** One -p through slirp4netns' API: the host side listens in the host's netns, as the user. */
export async function addHostFwd(apiSocket: string, p: PublishedPort): Promise<void> {
  const req = { execute: 'add_hostfwd', arguments: { proto: p.protocol, host_addr: p.hostIp, host_port: p.hostPort, guest_port: p.containerPort } };
  const reply = await apiCall(apiSocket, req);
  if (reply.error) {
    throw new BadStateError(`cannot publish ${p.hostIp}:${p.hostPort}/${p.protocol}: slirp4netns says ${reply.error.desc ?? JSON.stringify(reply.error)}`, 'pick another host port, or stop the program listening on it');
  }
}

function apiCall(socket: string, req: unknown): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => conn.destroy(new Error('no answer in 10 s')), TIMEOUT);
    conn.on('connect', () => conn.end(JSON.stringify(req)));
    conn.on('data', (b) => chunks.push(b));
    conn.on('error', (err) => { clearTimeout(timer); reject(new RuntimeError(`slirp4netns API ${socket}: ${err.message}`, 'the container\'s network helper is gone: restart the container', { cause: err })); });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(new RuntimeError(`slirp4netns API ${socket} answered no JSON`, 'restart the container', { cause: err }));
      }
    });
  });
}
