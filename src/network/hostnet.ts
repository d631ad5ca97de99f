import { existsSync, promises as fsp, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../util/exec.js';

/**
 * Host-side primitives: `ip -batch`, the netns bind mount, sysctls, link probes. Node cannot setns a
 * thread, so work inside a netns runs as a child: `unshare --net=FILE` for the batch that creates it,
 * `nsenter --net=FILE` afterwards (`ip -n` only knows /run/netns names).
 */

const TIMEOUT = 15_000;

const gone = (stderr: string) => /Cannot find device|does not exist|No such file|not mounted|no mount point/i.test(stderr);

export type Side = 'inside' | 'outside';

/** Runs `ip -batch -`: in the host netns, inside an existing netns, or creating the netns file on the way. */
export async function ipBatch(lines: readonly string[], where: { side: 'outside' } | { side: 'inside'; netns: string; create?: boolean }): Promise<void> {
  if (!lines.length) return;
  const input = lines.join('\n') + '\n';
  if (where.side === 'outside') {
    await run('ip', ['-batch', '-'], { input, timeout: TIMEOUT });
  } else if (where.create) {
    // unshare bind-mounts the new netns on the file, then runs ip inside it: one process for both.
    await (await fsp.open(where.netns, constants.O_CREAT | constants.O_WRONLY, 0o444)).close();
    await run('unshare', [`--net=${where.netns}`, 'ip', '-batch', '-'], { input, timeout: TIMEOUT });
  } else {
    await run('nsenter', [`--net=${where.netns}`, 'ip', '-batch', '-'], { input, timeout: TIMEOUT });
  }
}

/** `ip link del`; a missing link is "already gone". */
export async function deleteLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', 'dev', name], { timeout: TIMEOUT, alreadyGone: gone });
}

export function linkExists(name: string): boolean {
  return existsSync(path.join('/sys/class/net', name));
}

/** Unmounts and removes a netns file; missing or unmounted is success (CNI DEL). */
export async function removeNetns(file: string): Promise<void> {
  if (isMountPoint(file)) await run('umount', [file], { timeout: TIMEOUT, alreadyGone: gone });
  await fsp.rm(file, { force: true });
}

export function isMountPoint(file: string): boolean {
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  const escaped = file.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return mountinfo.split('\n').some((l) => l.split(' ')[4] === escaped);
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  const file = path.join('/proc/sys', ...key.split('.'));
  const current = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (current?.trim() !== value) await fsp.writeFile(file, value);
}

/** The netns this process runs in, as a path lines run inside another netns can name. */
export function hostNetnsPath(): string {
  return `/proc/${process.pid}/ns/net`;
}

/** Networks routed on the host (/proc/net/route), so automatic subnets avoid them. */
export function hostRoutes(): { base: number; prefix: number }[] {
  let text: string;
  try { text = readFileSync('/proc/net/route', 'utf8'); } catch { return []; }
  const out: { base: number; prefix: number }[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = leHex(f[1] ?? '0');
    const mask = leHex(f[7] ?? '0');
    if (mask === 0) continue; // the default route overlaps everything
    out.push({ base: dest, prefix: popcount(mask) });
  }
  return out;
}

function leHex(h: string): number {
  const n = parseInt(h, 16) >>> 0;
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x; x = (x & (x - 1)) >>> 0) c++;
  return c;
}
