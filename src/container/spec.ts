import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import type { ClientTerminal } from '../types.js';
import type { CreateRequest } from '../options.js';
import type { ContainerDeps, ImageConfig, MountPoint, PlanResult, SandboxStatus, Spec } from './ports.js';
import { ociMounts } from '../volume/index.js';
import { containerPaths, type ContainerRecord, type RecordStore } from './record.js';

/**
 * Gathers what the bundle layer's pure planSpec/finishSpec need for one container. At create (`plan`):
 * the files the flags name (--env-file, seccomp profiles), the planned mounts, device numbers and the engine's
 * own capabilities, read once, so that the plan holds their contents. At each start (`finish`): the
 * image's passwd, the namespaces of the containers it joins, the sandbox's files, link variables.
 */
export class SpecAssembler {
  private hostCaps?: Promise<string[]>;

  constructor(private readonly layout: StoreLayout, private readonly deps: ContainerDeps, private readonly records: RecordStore) {}

  async plan(id: string, req: CreateRequest, imageConfig: ImageConfig, cgroupParent = '/berth', mounts: readonly MountPoint[] = [], userns = false): Promise<PlanResult> {
    const host = this.deps.host;
    const [envFileText, seccompProfileText, devices, hostCapabilities] = await Promise.all([
      Promise.all((req.envFiles ?? []).map((f) => readUserFile(f, '--env-file'))),
      readSeccompProfile(req.securityOpt),
      this.deps.bundle.statDevices(this.deps.bundle.devicePathsOf(req)),
      (this.hostCaps ??= this.deps.bundle.readHostCapabilities()),
    ]);
    const hostMode = (mode: string | undefined) => (mode === 'host' ? 'host' as const : undefined);
    return this.deps.bundle.planSpec({
      id,
      imageConfig,
      request: req,
      host,
      namespaces: {
        network: hostMode(req.network?.networks?.[0]),
        pid: hostMode(req.pid),
        ipc: hostMode(req.ipc),
        uts: hostMode(req.uts),
      },
      extraMounts: ociMounts(mounts),
      cgroupsPath: `${cgroupParent}/${id}`,
      initPath: req.init ? host.tools.catatonit : undefined,
      devices,
      hostCapabilities,
      seccompProfileText,
      envFileText,
      userns,
    });
  }

  async finish(rec: ContainerRecord, rootfs: string, sandbox: SandboxStatus): Promise<Spec> {
    const p = containerPaths(this.layout, rec.id);
    const { joins, spec: plan } = rec.config;
    const [userDb, linkEnv, hostDevices] = await Promise.all([
      this.deps.bundle.readUserDb(rootfs),
      this.linkEnv(rec.config.network.links),
      plan.privileged ? this.deps.bundle.listHostDevices() : undefined,
    ]);
    return this.deps.bundle.finishSpec(plan, {
      rootfsPath: rootfs,
      userDb,
      namespaces: {
        network: networkNamespace(sandbox),
        ...(sandbox.usernsPath ? { user: { path: sandbox.usernsPath } } : {}),
        pid: await this.joinedNamespace(joins.pid, 'pid'),
        ipc: await this.joinedNamespace(joins.ipc, 'ipc'),
        uts: await this.joinedNamespace(joins.uts, 'uts'),
      },
      files: { hostname: p.hostname, hosts: p.hosts, resolvConf: p.resolvConf },
      hostDevices,
      extraEnv: linkEnv,
      ...(rec.config.userns?.idmap ? { idmap: rec.config.userns.idmap } : {}),
    });
  }

  /** --pid/--ipc/--uts container:X: X was resolved at create; it must be running now. */
  private async joinedNamespace(id: string | undefined, kind: 'pid' | 'ipc' | 'uts'): Promise<{ path: string } | undefined> {
    if (!id) return undefined;
    const other = await this.records.load(id);
    if (!other) throw new BadStateError(`cannot join the ${kind} namespace of container ${id.slice(0, 12)}: it was removed`, 'create this container again');
    if (other.state !== 'running' || !other.pid) throw new BadStateError(`cannot join the ${kind} namespace of container ${other.name}: it is not running`, `start ${other.name} first`);
    return { path: `/proc/${other.pid}/ns/${kind}` };
  }

  /** Docker's legacy link variables: ALIAS_PORT_80_TCP_ADDR and friends, from the target's record. */
  private async linkEnv(links: readonly { id: string; name: string; alias: string }[]): Promise<string[]> {
    const env: string[] = [];
    for (const link of links) {
      const other = await this.records.load(link.id);
      const ip = other?.networks[0]?.ipv4?.split('/')[0];
      if (!other || !ip) continue;
      const alias = link.alias.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
      const ports = Object.keys(other.config.imageConfig.ExposedPorts ?? {}).sort();
      env.push(`${alias}_NAME=/${other.name}/${link.alias}`);
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

function networkNamespace(sandbox: SandboxStatus): { path: string } | 'host' | undefined {
  if (sandbox.mode === 'host') return 'host';
  return sandbox.netnsPath ? { path: sandbox.netnsPath } : undefined;
}

export async function readUserFile(file: string, field: string): Promise<string> {
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

/** The container's cgroup as runc made it (records from before --cgroup-parent lack nothing: the path is in the plan). */
export function cgroupsPathOf(rec: ContainerRecord): string {
  return rec.config.spec.spec.linux?.cgroupsPath ?? `/berth/${rec.id}`;
}

/** The volumes' host paths as their drivers gave them at this start (volume layer `mount`). */
export function useVolumeSources(spec: Spec, sources: ReadonlyMap<string, string>): void {
  for (const m of spec.mounts ?? []) {
    const source = m.type === 'bind' ? sources.get(m.destination) : undefined;
    if (source) m.source = source;
  }
}
