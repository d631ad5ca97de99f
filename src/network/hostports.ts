import dgram from 'node:dgram';
import { promises as fsp, constants, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { shortId } from '../ids.js';
import { ensureDir, readdirIfExists } from '../util/fs.js';
import { withFileLock } from './mutex.js';
import type { PortRequest, Protocol, PublishedPort } from './types.js';

/**
 * Host ports. A port is ours once a reservation file `<proto>-<port>` is created O_EXCL holding the
 * owner; a port counts as free only if nothing on the host can be bound there either (a listener that
 * is not a container: DNAT would silently steal its traffic). Reservations ignore the host IP: one
 * container per host port and protocol, which is stricter than Docker but never ambiguous.
 */
export class HostPorts {
  constructor(private readonly dir: string, private readonly lockFile: string) {}

  /** Reserves every request for `owner`, all or nothing. Throws BadStateError naming a taken port. */
  reserve(owner: string, requests: readonly PortRequest[]): Promise<PublishedPort[]> {
    return withFileLock(this.lockFile, async () => {
      await ensureDir(this.dir);
      const done: PublishedPort[] = [];
      try {
        for (const r of requests) done.push(await this.reserveOne(owner, r, done));
      } catch (err) {
        for (const b of done) await this.releaseOne(owner, b);
        throw err;
      }
      return done;
    });
  }

  private async reserveOne(owner: string, r: PortRequest, done: readonly PublishedPort[]): Promise<PublishedPort> {
    const fixed = r.hostPorts && r.hostPorts.first === r.hostPorts.last;
    for (const port of portCandidates(r.hostPorts)) {
      // A port this owner already holds counts as ours in tryFile (a retried attach): within one
      // reservation, a range or -P must not pick the port another of its mappings got.
      if (done.some((b) => b.hostPort === port && b.protocol === r.protocol)) {
        if (fixed) throw new BadStateError(`Bind for ${r.hostIp}:${port} failed: port is already allocated`, 'another -p of this container took it from its range: give each mapping its own port');
        continue;
      }
      const holder = await this.tryFile(owner, r.protocol, port);
      if (holder !== undefined && fixed) {
        throw new BadStateError(`host port ${port}/${r.protocol} is already published by container ${shortId(holder)}`, 'pick another host port, or stop that container');
      }
      if (holder !== undefined) continue;
      if (await canBind(r.protocol, r.hostIp, port)) return { hostIp: r.hostIp, hostPort: port, containerPort: r.containerPort, protocol: r.protocol };
      await fsp.rm(this.file(r.protocol, port), { force: true });
      if (fixed) throw new BadStateError(`host port ${r.hostIp}:${port}/${r.protocol} is already in use on this host`, 'pick another host port, or stop the program listening on it');
    }
    const what = r.hostPorts ? `${r.hostPorts.first}-${r.hostPorts.last}` : 'the ephemeral range';
    throw new BadStateError(`no free host port in ${what} for ${r.containerPort}/${r.protocol}`, 'free a port, or publish a wider range');
  }

  /** Undefined when created for `owner` (or already ours); otherwise the holder's id. */
  private async tryFile(owner: string, proto: Protocol, port: number): Promise<string | undefined> {
    try {
      const fh = await fsp.open(this.file(proto, port), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try { await fh.writeFile(owner); } finally { await fh.close(); }
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = (await fsp.readFile(this.file(proto, port), 'utf8').catch(() => '')).trim();
    return holder === owner ? undefined : holder || 'unknown';
  }

  private file(proto: Protocol, port: number): string {
    return path.join(this.dir, `${proto}-${port}`);
  }

  private async releaseOne(owner: string, b: PublishedPort): Promise<void> {
    const f = this.file(b.protocol, b.hostPort);
    if ((await fsp.readFile(f, 'utf8').catch(() => '')).trim() === owner) await fsp.rm(f, { force: true });
  }

  /** Frees every reservation held by an owner failing `keep` (all of `owner`'s, with keep = o !== owner). */
  releaseWhere(keep: (owner: string) => boolean): Promise<string[]> {
    return withFileLock(this.lockFile, async () => {
      const freed: string[] = [];
      for (const name of await readdirIfExists(this.dir)) {
        const f = path.join(this.dir, name);
        const holder = (await fsp.readFile(f, 'utf8').catch(() => '')).trim();
        if (holder && keep(holder)) continue;
        await fsp.rm(f, { force: true });
        freed.push(name);
      }
      return freed;
    });
  }
}

function* portCandidates(range: { first: number; last: number } | undefined): Generator<number> {
  const { first, last } = range ?? ephemeralRange();
  const span = last - first + 1;
  // Random start so concurrent -P callers rarely race for the same port.
  const start = range && first === last ? 0 : Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) yield first + ((start + i) % span);
}

function ephemeralRange(): { first: number; last: number } {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a && b) return { first: a, last: b };
  } catch { /* fall through to the kernel's default */ }
  return { first: 32768, last: 60999 };
}

/** Tries to bind the port on the host; EADDRINUSE means taken, EADDRNOTAVAIL means a wrong host IP. */
export function canBind(proto: Protocol, hostIp: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else if (err.code === 'EADDRNOTAVAIL') reject(new InvalidArgumentError('publish', `${hostIp} is not an address of this host`));
      else reject(err);
    };
    if (proto === 'udp') {
      const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      sock.once('error', (e) => { sock.close(); onError(e); });
      sock.bind(port, hostIp, () => sock.close(() => resolve(true)));
    } else {
      const srv = net.createServer();
      srv.once('error', onError);
      srv.listen({ host: hostIp, port, exclusive: true }, () => srv.close(() => resolve(true)));
    }
  });
}
