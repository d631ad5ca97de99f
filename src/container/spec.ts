import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import type { ClientTerminal } from '../types.js';
import type { ContainerDeps, ImageConfig, SandboxStatus, Spec } from './ports.js';
import { containerPaths, readImageConfig, type ContainerRecord, type RecordStore } from './record.js';

/**
 * Gathers what the bundle layer's pure `buildSpec` needs for one container: files named by flags
 * (--env-file, seccomp profiles), namespaces of other containers (--pid container:X), link variables,
 * bind mounts, device numbers and the engine's own capabilities, and the sandbox's files.
 */
export class SpecAssembler {
  private hostCaps?: Promise<string[]>;

  constructor(private readonly layout: StoreLayout, private readonly deps: ContainerDeps, private readonly records: RecordStore) {}

  async build(rec: ContainerRecord, rootfs: string, imageConfig: ImageConfig, sandbox: SandboxStatus | undefined): Promise<{ spec: Spec; warnings: string[] }> {
    const host = this.deps.host;
    const p = containerPaths(this.layout, rec.id);
    const req = rec.request;
    const [userDb, envFileText, seccompProfileText, links] = await Promise.all([
      this.deps.bundle.readUserDb(rootfs),
      Promise.all((req.envFiles ?? []).map((f) => readUserFile(f, '--env-file'))),
      readSeccompProfile(req.securityOpt),
      this.linkEnv(req.network?.links),
    ]);
    const request = links.length ? { ...req, env: [...links, ...(req.env ?? [])] } : req;
    return this.deps.bundle.buildSpec({
      id: rec.id,
      rootfsPath: rootfs,
      imageConfig,
      request,
      host,
      userDb,
      namespaces: {
        network: networkNamespace(sandbox),
        pid: await this.sharedNamespace(req.pid, 'pid'),
        ipc: await this.sharedNamespace(req.ipc, 'ipc'),
        uts: await this.sharedNamespace(req.uts, 'uts'),
      },
      files: sandbox ? { hostname: p.hostname, hosts: p.hosts, resolvConf: p.resolvConf } : {},
      extraMounts: bindMounts(req.volumes),
      cgroupsPath: `/berth/${rec.id}`,
      initPath: req.init ? host.tools.catatonit : undefined,
      devices: await this.deps.bundle.statDevices(this.deps.bundle.devicePathsOf(req)),
      hostCapabilities: await (this.hostCaps ??= this.deps.bundle.readHostCapabilities()),
      hostDevices: req.privileged ? await this.deps.bundle.listHostDevices() : undefined,
      seccompProfileText,
      envFileText,
    });
  }

  private async sharedNamespace(mode: string | undefined, kind: 'pid' | 'ipc' | 'uts'): Promise<{ path: string } | 'host' | undefined> {
    if (!mode || mode === 'private' || mode === 'shareable') return undefined;
    if (mode === 'host') return 'host';
    if (mode.startsWith('container:')) {
      const other = await this.records.resolve(mode.slice('container:'.length));
      if (other.state !== 'running' || !other.pid) throw new BadStateError(`cannot join the ${kind} namespace of container ${other.name}: it is not running`, `start ${other.name} first`);
      return { path: `/proc/${other.pid}/ns/${kind}` };
    }
    throw new InvalidArgumentError(`--${kind}`, `"${mode}" is not host, private or container:NAME`);
  }

  /** Docker's legacy link variables: ALIAS_PORT_80_TCP_ADDR and friends, from the target's record. */
  private async linkEnv(links: string[] | undefined): Promise<string[]> {
    const env: string[] = [];
    for (const link of links ?? []) {
      const [target, aliasText] = link.split(':');
      const other = await this.records.resolve(target!);
      const alias = (aliasText ?? other.name).toUpperCase().replace(/[^A-Z0-9_]/g, '_');
      const ip = other.networks[0]?.ipv4?.split('/')[0];
      if (!ip) continue;
      const cfg = await readImageConfig(this.layout, other.id).catch(() => undefined);
      const ports = Object.keys(cfg?.ExposedPorts ?? {}).sort();
      env.push(`${alias}_NAME=/${other.name}/${aliasText ?? other.name}`);
      for (const [i, port] of ports.entries()) {
        const [num, proto = 'tcp'] = port.split('/');
        const key = `${alias}_PORT_${num}_${proto.toUpperCase()}`;
        if (i === 0) env.push(`${alias}_PORT=${proto}://${ip}:${num}`);
        env.push(`${key}=${proto}://${ip}:${num}`, `${key}_ADDR=${ip}`, `${key}_PORT=${num}`, `${key}_PROTO=${proto}`);
      }
    }
    return env;
  }
}

function networkNamespace(sandbox: SandboxStatus | undefined): { path: string } | 'host' | undefined {
  if (!sandbox) return undefined;
  if (sandbox.mode === 'host') return 'host';
  return sandbox.netnsPath ? { path: sandbox.netnsPath } : undefined;
}

/** -v SRC:DST[:ro|rw]: bind mounts of host paths. Named and anonymous volumes arrive with the volume layer. */
function bindMounts(volumes: string[] | undefined) {
  return (volumes ?? []).map((v) => {
    const [src = '', dst, mode = 'rw', ...rest] = v.split(':');
    if (!dst || rest.length || !path.isAbsolute(dst)) {
      throw new InvalidArgumentError('--volume', `"${v}" is not SRC:DST[:ro|rw] with an absolute DST`);
    }
    if (!path.isAbsolute(src)) {
      throw new InvalidArgumentError('--volume', `"${src}" is not an absolute host path`, 'named and anonymous volumes are not supported yet: give a host path');
    }
    const flags = mode.split(',');
    if (flags.some((f) => !['ro', 'rw', 'z', 'Z', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'].includes(f))) {
      throw new InvalidArgumentError('--volume', `unknown mount option in "${mode}"`);
    }
    return {
      destination: dst, type: 'bind', source: src,
      options: ['rbind', flags.includes('ro') ? 'ro' : 'rw', 'rprivate'],
    };
  });
}

async function readUserFile(file: string, field: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(field, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readSeccompProfile(securityOpt: string[] | undefined): Promise<string | undefined> {
  const opt = (securityOpt ?? []).find((o) => o.startsWith('seccomp=') || o.startsWith('seccomp:'));
  const value = opt?.slice('seccomp='.length);
  if (!value || value === 'unconfined' || value === 'builtin') return undefined;
  return readUserFile(value, '--security-opt seccomp');
}


/**
 * A tty container starts at the attaching client's size (docker's ConsoleSize): runc sets it on the pty
 * before the process runs, so the first `stty size` is right, which a resize after start cannot promise.
 * Without a client (start, restart) the size from an earlier start is not kept.
 */
export function setConsoleSize(spec: Spec, terminal: ClientTerminal | undefined): void {
  if (!spec.process) return;
  delete spec.process.consoleSize;
  const size = spec.process.terminal ? terminal?.size() : undefined;
  if (size && size.rows > 0 && size.columns > 0) spec.process.consoleSize = { height: size.rows, width: size.columns };
}
