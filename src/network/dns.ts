import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { run } from '../util/exec.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';
import type { HostEntry } from './files.js';

/**
 * One dnsmasq per user-defined network, listening on the gateway address only. Names live in an
 * addn-hosts file that Berth rewrites atomically and announces with SIGHUP. It runs as root: Berth's
 * roots may sit under folders other users cannot enter (mkdtemp gives 0700), and a dnsmasq that
 * dropped privileges would fail to re-read its hosts file there silently (aardvark-dns runs as root too).
 */
export class NameServer {
  private readonly hostsFile: string;
  private readonly pidFile: string;

  constructor(private readonly dir: string) {
    this.hostsFile = path.join(dir, 'hosts');
    this.pidFile = path.join(dir, 'dnsmasq.pid');
  }

  /** Writes the names and makes sure a server on `listen` (in `netns`, else the host's) serves them. */
  async sync(listen: string, entries: readonly HostEntry[], upstreams: readonly string[], netns?: string): Promise<void> {
    await ensureDir(this.dir);
    await writeFileAtomic(this.hostsFile, entries.map((e) => `${e.ip} ${e.names.join(' ')}`).join('\n') + '\n');
    const pid = this.runningPid();
    if (pid) {
      process.kill(pid, 'SIGHUP');
      return;
    }
    const args = [
      '--conf-file=/dev/null', '--no-hosts', `--addn-hosts=${this.hostsFile}`, `--pid-file=${this.pidFile}`,
      `--listen-address=${listen}`, '--bind-interfaces', '--port=53', '--user=root', '--no-resolv',
      '--cache-size=0', ...upstreams.map((s) => `--server=${s}`),
    ];
    await (netns ? run('nsenter', [`--net=${netns}`, 'dnsmasq', ...args], { timeout: 10_000 }) : run('dnsmasq', args, { timeout: 10_000 }));
  }

  /** Stops the server; not running is success. */
  async stop(): Promise<void> {
    const pid = this.runningPid();
    if (pid) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 500 && this.isOurs(pid); i++) await new Promise((r) => setTimeout(r, 2));
    }
    await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** The pid in the pid file, if that process is still our dnsmasq (not a reused pid). */
  runningPid(): number | undefined {
    let pid: number;
    try { pid = Number(readFileSync(this.pidFile, 'utf8').trim()); } catch { return undefined; }
    return pid > 0 && this.isOurs(pid) ? pid : undefined;
  }

  private isOurs(pid: number): boolean {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(`--pid-file=${this.pidFile}`)) return false;
      // A zombie still has its cmdline gone; State Z means it has exited.
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  }
}
