/**
 * Podman and docker, measured side by side whenever installed (--no-peers skips them). Nothing is
 * installed here (`scripts/setup.sh --peers` does); each peer runs on stores in temp folders, and a
 * dockerd the bench started is stopped by its PID afterwards. See MACHINE-NOTES.md for why podman needs
 * its settings in /etc/containers/containers.conf on this machine.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandOptions } from '../src/util/exec.js';
import { deferCleanup, errorText, findBinary, type PeerCli, scratch, sh, sleep } from './lib.js';

const PEER_IMAGE = 'localhost/berth-bench-busybox:latest';

/** A peer that could not be set up: every use throws its reason, which its rows print as n/a. */
function unavailable(name: PeerCli['name'], reason: string): PeerCli {
  const fail = (): never => { throw new Error(reason); };
  return { name, image: PEER_IMAGE, forceRemove: [], cli: () => Promise.reject(new Error(reason)), argv: fail };
}

/**
 * The peers installed here. Docker counts by its daemon: these machines carry a static docker client
 * (/usr/local/bin/docker) with no engine behind it.
 */
export async function installedPeers(): Promise<Array<PeerCli['name']>> {
  const found: Array<PeerCli['name']> = [];
  if (await findBinary('podman')) found.push('podman');
  if (await findBinary('docker') && await findBinary('dockerd')) found.push('docker');
  return found;
}

/** Both peers, each ready or carrying the reason it is not. `rootfsTar` is the busybox rootfs tarball. */
export async function startPeers(rootfsTar: string, log: (m: string) => void): Promise<PeerCli[]> {
  return [await startPodman(rootfsTar, log), await startDocker(rootfsTar, log)];
}

// ---------------------------------------------------------------- podman

/** MACHINE-NOTES: crun refuses the hybrid cgroup layout; podman's default ulimits exceed the hard limits. */
export const PODMAN_CONF = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

/** The default bridge podman makes: netavark's, or CNI's (Debian's podman without recommends). */
const PODMAN_BRIDGES = ['podman0', 'cni-podman0'];

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Deletes the bridges a peer made during this run; ones that existed before stay. */
async function deleteNewBridges(names: readonly string[], before: readonly string[]): Promise<void> {
  for (const name of names.filter((n) => !before.includes(n) && linkExists(n))) {
    await sh('ip', ['link', 'del', name], { timeout: 10_000 }).catch(() => undefined);
  }
}

async function startPodman(rootfsTar: string, log: (m: string) => void): Promise<PeerCli> {
  const bin = await findBinary('podman');
  if (!bin) return unavailable('podman', 'podman not installed (apt-get install -y podman)');
  const tmp = await scratch('podman');
  const conf = path.join(tmp.dir, 'containers.conf');
  await writeFile(conf, PODMAN_CONF);
  // CONTAINERS_CONF covers the commands the bench runs, but podman does not pass it to the cleanup
  // processes its monitors start: those read /etc/containers/containers.conf (scripts/setup.sh --peers).
  const env = { CONTAINERS_CONF: conf };
  const etc = await readFile('/etc/containers/containers.conf', 'utf8').catch(() => '');
  if (!/^\s*runtime\s*=\s*"runc"/m.test(etc)) log('podman: /etc/containers/containers.conf does not set runtime = "runc": its cleanup processes may fail (scripts/setup.sh --peers writes it)');
  const bridgesBefore = PODMAN_BRIDGES.filter(linkExists);
  const globals = ['--root', path.join(tmp.dir, 'root'), '--runroot', path.join(tmp.dir, 'run'), '--tmpdir', path.join(tmp.dir, 'tmp')];
  const podman: PeerCli = {
    name: 'podman',
    image: PEER_IMAGE,
    forceRemove: ['rm', '-f', '-t', '0'],
    cli: (args: readonly string[], opts: CommandOptions = {}) => sh(bin, [...globals, ...args], { timeout: 60_000, ...opts, env: { ...env, ...opts.env } }),
    argv: (args) => ({ file: bin, args: [...globals, ...args], env }),
  };
  deferCleanup(async () => {
    await podman.cli([...podman.forceRemove, '-a'], { timeout: 180_000 }).catch(() => undefined);
    await podman.cli(['rmi', '-af'], { timeout: 60_000 }).catch(() => undefined);
    await deleteNewBridges(PODMAN_BRIDGES, bridgesBefore);
    await tmp.remove();
  });
  try {
    log('podman: importing the busybox rootfs');
    await podman.cli(['import', rootfsTar, PEER_IMAGE], { timeout: 120_000 });
    return podman;
  } catch (err) {
    return unavailable('podman', `podman set-up failed: ${errorText(err)}`);
  }
}

// ---------------------------------------------------------------- docker

async function startDocker(rootfsTar: string, log: (m: string) => void): Promise<PeerCli> {
  const bin = await findBinary('docker');
  if (!bin) return unavailable('docker', 'docker client not installed (apt-get install -y docker.io)');
  const client = (env: Record<string, string>): PeerCli => ({
    name: 'docker',
    image: PEER_IMAGE,
    forceRemove: ['rm', '-f'],
    cli: (args: readonly string[], opts: CommandOptions = {}) => sh(bin, args, { timeout: 60_000, ...opts, env: { ...env, ...opts.env } }),
    argv: (args) => ({ file: bin, args, env }),
  });

  // A daemon someone already runs is used as it is, and left running.
  const running = client({});
  if (await running.cli(['info'], { timeout: 10_000 }).then(() => true, () => false)) {
    log('docker: using the dockerd already running');
    return (await importDockerImage(running, rootfsTar)) ?? running;
  }

  const dockerd = await findBinary('dockerd');
  if (!dockerd) return unavailable('docker', 'no dockerd running and none installed (apt-get install -y docker.io)');
  const tmp = await scratch('docker');
  const sock = path.join(tmp.dir, 'docker.sock');
  const bridgesBefore = ['docker0'].filter(linkExists);
  const logFd = openSync(path.join(tmp.dir, 'dockerd.log'), 'a');
  // A daemon outlives any one command, so it cannot go through run(): spawned detached, stopped by PID.
  const child = spawn(dockerd, ['--data-root', path.join(tmp.dir, 'data'), '--exec-root', path.join(tmp.dir, 'exec'),
    '-p', path.join(tmp.dir, 'dockerd.pid'), '-H', `unix://${sock}`], { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  child.unref();
  const pid = child.pid;
  const docker = client({ DOCKER_HOST: `unix://${sock}` });
  deferCleanup(async () => {
    const { stdout } = await docker.cli(['ps', '-aq'], { timeout: 30_000 }).catch(() => ({ stdout: '' }));
    const ids = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    if (ids.length) await docker.cli(['rm', '-f', ...ids], { timeout: 180_000 }).catch(() => undefined);
    if (pid) await stopByPid(pid);
    await deleteNewBridges(['docker0'], bridgesBefore);
    await tmp.remove();
  });
  log(`docker: started dockerd (pid ${pid}) on ${sock}`);
  for (let waited = 0; ; waited += 250) {
    if (await docker.cli(['info'], { timeout: 5_000 }).then(() => true, () => false)) break;
    if (waited > 30_000 || child.exitCode !== null) return unavailable('docker', `dockerd did not come up; see ${path.join(tmp.dir, 'dockerd.log')}`);
    await sleep(250);
  }
  return (await importDockerImage(docker, rootfsTar)) ?? docker;
}

async function importDockerImage(docker: PeerCli, rootfsTar: string): Promise<PeerCli | undefined> {
  try {
    await docker.cli(['import', rootfsTar, PEER_IMAGE], { timeout: 120_000 });
    return undefined;
  } catch (err) {
    return unavailable('docker', `docker import failed: ${errorText(err)}`);
  }
}

/** SIGTERM, wait up to 20 s, then SIGKILL: the daemon's own containerd goes down with it. */
export async function stopByPid(pid: number): Promise<void> {
  const alive = () => existsSync(`/proc/${pid}`);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 80 && alive(); i++) await sleep(250);
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
}
