import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { BadStateError } from '../errors.js';
import type { Protocol, PublishedPort } from './types.js';

/**
 * A userland proxy for ports published on [::1]. IPv4 reaches a container from 127.0.0.1 through DNAT
 * with route_localnet; IPv6 has no such switch, and the kernel drops a packet from ::1 that would leave
 * the loopback device. So, as Docker's docker-proxy does, a socat listens on [::1]:PORT and connects to
 * the container. It runs detached in its own process group (the command that started it exits), and the
 * sandbox record keeps its pid and start time, so detach kills exactly that process and its children.
 */
export interface ProxyRecord {
  pid: number;
  /** field 22 of /proc/PID/stat: a pid reused by another process after a reboot does not match */
  start: string;
  port: number;
  protocol: Protocol;
}

/** Whether a published port needs the proxy: [::1], or every address on an endpoint with IPv6. */
export function needsProxy(p: PublishedPort, hasIpv6: boolean): boolean {
  return hasIpv6 && (p.hostIp === '::1' || p.hostIp === '0.0.0.0');
}

export async function startProxy(p: PublishedPort, ipv6: string): Promise<ProxyRecord> {
  const [listen, connect] = p.protocol === 'tcp'
    ? [`TCP6-LISTEN:${p.hostPort},bind=[::1],reuseaddr,fork`, `TCP6:[${ipv6}]:${p.containerPort}`]
    : [`UDP6-RECVFROM:${p.hostPort},bind=[::1],reuseaddr,fork`, `UDP6-SENDTO:[${ipv6}]:${p.containerPort}`];
  const child = spawn('socat', [listen, connect], { detached: true, stdio: 'ignore' });
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => resolve(child.pid!));
  });
  child.unref();
  const rec = { pid, start: startTime(pid) ?? '', port: p.hostPort, protocol: p.protocol };
  // Answer from the first connection on: wait (up to 5 s) until the socket is bound.
  for (let i = 0; i < 250 && !listening(pid, p.protocol, p.hostPort); i++) {
    if (startTime(pid) === undefined) {
      throw new BadStateError(`host port [::1]:${p.hostPort}/${p.protocol} could not be bound (its proxy, socat, exited at once)`, 'pick another host port, or stop the program listening on it');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return rec;
}

/** Kills the proxy's process group if it is still the process the record names; gone is success. */
export function stopProxy(rec: ProxyRecord): void {
  if (startTime(rec.pid) !== rec.start) return;
  try { process.kill(-rec.pid, 'SIGTERM'); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; }
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process itself holds a socket bound to [::1]:port (another program's does not count). */
function listening(pid: number, proto: Protocol, port: number): boolean {
  let text: string;
  const inodes = new Set<string>();
  try {
    text = readFileSync(`/proc/net/${proto}6`, 'utf8');
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' }));
      if (m) inodes.add(m[1]!);
    }
  } catch {
    return false;
  }
  const local = `00000000000000000000000001000000:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  // /proc/net/tcp6 columns: sl local remote st tx:rx tr:when retrnsmt uid timeout inode
  return text.split('\n').some((l) => { const f = l.trim().split(/\s+/); return f[1] === local && inodes.has(f[9] ?? ''); });
}
