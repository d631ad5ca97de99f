/**
 * The container layer's records shaped as Docker shows them (`ps`, `inspect`): PascalCase field names and
 * Docker's words, since scripts parse them. Everything comes from the record's config, parsed once at
 * create, so `inspect` shows the same config before and after a start.
 */
import { formatIdMap } from '../userns/index.js';
import type { ContainerDetails, ContainerSize, ListedRecord, ListedView } from '../container/index.js';
import { dockerStatus, healthcheckView, statusText, ZERO_TIME } from '../container/index.js';
import type { ContainerInspect, ContainerSummary } from '../types.js';

/** Docker's HostConfig.NetworkMode word for a planned network mode. */
function networkModeOf(r: ListedRecord): string {
  const mode = r.config.network.mode;
  switch (mode.kind) {
    case 'container': return `container:${mode.id}`;
    case 'networks': return mode.networks[0]?.name ?? 'bridge';
    default: return mode.kind;
  }
}

/** Docker's `.Mounts`: every mount planned at create (older records knew binds only). */
function mountsView(r: ListedRecord): Record<string, unknown>[] {
  const planned = r.config.mounts ?? r.config.spec.mounts.user.filter((m) => m.type === 'bind')
    .map((m) => ({ type: 'bind' as const, source: m.source ?? '', destination: m.destination, mode: '', rw: !m.options?.includes('ro'), propagation: 'rprivate' }));
  return planned.map((m) => ({
    Type: m.type,
    ...(m.type === 'volume' ? { Name: 'name' in m ? m.name : '' } : {}),
    Source: m.source,
    Destination: m.destination,
    ...(m.type === 'volume' ? { Driver: 'driver' in m ? m.driver : 'local' } : {}),
    Mode: m.mode,
    RW: m.rw,
    Propagation: m.propagation,
  }));
}

export function summaryView(r: ListedView, size?: ContainerSize): ContainerSummary {
  const c = r.config;
  return {
    id: r.id,
    names: [r.name],
    image: c.image,
    imageId: c.imageId,
    command: [c.path, ...c.args].filter(Boolean).join(' '),
    created: r.created,
    state: dockerStatus(r.state, r.startedAt !== ZERO_TIME),
    status: statusText(r),
    ports: r.ports,
    labels: c.labels,
    networks: r.networks.map((n) => n.network).filter(Boolean).length ? r.networks.map((n) => n.network) : [networkModeOf(r)],
    networkMode: networkModeOf(r),
    endpoints: r.networks.map((n) => ({
      network: n.network, networkId: n.networkId, ipv4: n.ipv4?.split('/')[0] ?? '', prefixLength: Number(n.ipv4?.split('/')[1] ?? n.prefixLength ?? 0),
      gateway: n.gateway ?? '', ipv6: n.ipv6?.split('/')[0] ?? '', mac: n.mac ?? '', aliases: n.aliases ?? [],
    })),
    mounts: mountsView(r),
    exitCode: r.state === 'exited' ? r.exitCode : undefined,
    ...(size ? { sizeRw: size.rw, sizeRootFs: size.rootFs } : {}),
  };
}

/** `docker inspect` of a container. */
export function inspectView({ record: r, paths, size, driver }: ContainerDetails): ContainerInspect {
  const c = r.config;
  const req = c.request;
  const res = req.resources ?? {};
  const plan = c.spec.spec;
  const limits = plan.linux?.resources;
  const shm = c.spec.mounts.system.find((m) => m.destination === '/dev/shm')?.options?.find((o) => o.startsWith('size='))?.slice(5);
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of r.ports) (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  const primary = r.networks[0];
  return {
    Id: r.id,
    Created: r.created,
    Path: c.path,
    Args: c.args,
    State: {
      Status: dockerStatus(r.state, r.startedAt !== ZERO_TIME),
      Running: r.state === 'running' || r.state === 'paused',
      Paused: r.state === 'paused',
      Restarting: r.state === 'restarting',
      OOMKilled: r.oomKilled,
      Dead: false,
      Pid: r.pid,
      ExitCode: r.exitCode,
      Error: r.error,
      StartedAt: r.startedAt,
      FinishedAt: r.finishedAt,
      ...(r.health ? { Health: r.health } : {}),
    },
    Image: c.imageId,
    ResolvConfPath: paths.resolvConf,
    HostnamePath: paths.hostname,
    HostsPath: paths.hosts,
    LogPath: paths.log,
    Name: `/${r.name}`,
    RestartCount: r.restartCount,
    Driver: driver,
    Platform: 'linux',
    ...(size ? { SizeRw: size.rw, SizeRootFs: size.rootFs } : {}),
    HostConfig: {
      AutoRemove: c.autoRemove,
      NetworkMode: networkModeOf(r),
      PortBindings: ports,
      RestartPolicy: { Name: c.restartPolicy.name, MaximumRetryCount: c.restartPolicy.maxRetries },
      Privileged: c.spec.privileged,
      ReadonlyRootfs: !!plan.root?.readonly,
      CapAdd: req.capAdd ?? null,
      CapDrop: req.capDrop ?? null,
      SecurityOpt: req.securityOpt ?? null,
      Binds: req.volumes ?? null,
      Links: req.network?.links ?? null,
      Dns: c.network.dns,
      DnsSearch: c.network.dnsSearch,
      DnsOptions: c.network.dnsOptions,
      ExtraHosts: c.network.extraHosts.length ? c.network.extraHosts : null,
      PidMode: req.pid ?? '',
      IpcMode: req.ipc ?? 'private',
      UTSMode: req.uts ?? '',
      ShmSize: shm !== undefined ? Number(shm) : null,
      Init: req.init ?? null,
      Memory: limits?.memory?.limit ?? 0,
      MemorySwap: limits?.memory?.swap ?? 0,
      MemoryReservation: limits?.memory?.reservation ?? 0,
      NanoCpus: res.cpus !== undefined ? Math.round(Number(res.cpus) * 1e9) : 0,
      CpuShares: limits?.cpu?.shares ?? 0,
      CpuPeriod: limits?.cpu?.period ?? 0,
      CpuQuota: limits?.cpu?.quota ?? 0,
      CpusetCpus: limits?.cpu?.cpus ?? '',
      CpusetMems: limits?.cpu?.mems ?? '',
      PidsLimit: limits?.pids?.limit ?? null,
      BlkioWeight: limits?.blockIO?.weight ?? 0,
      OomKillDisable: !!limits?.memory?.disableOOMKiller,
      Tmpfs: req.tmpfs ?? null,
      Ulimits: req.ulimits ?? null,
      Runtime: c.runtime?.name ?? 'runc',
      LogConfig: { Type: 'k8s-file', Config: req.logOpts ?? {} },
      GroupAdd: c.spec.groupAdd ?? null,
      OomScoreAdj: plan.process?.oomScoreAdj ?? 0,
      ContainerIDFile: req.cidfile ?? '',
      CgroupParent: req.cgroupParent ?? '',
      CgroupnsMode: plan.linux?.namespaces?.some((n) => n.type === 'cgroup') ? 'private' : 'host',
      // Docker's "" (the engine's choice) or "host"; Berth's own modes as podman writes them.
      UsernsMode: c.userns?.mode ?? req.userns ?? '',
      // podman's field: each range as CONTAINER:HOST:SIZE.
      ...(c.userns?.idmap ? { IDMappings: { UidMap: c.userns.idmap.uid.map(formatIdMap), GidMap: c.userns.idmap.gid.map(formatIdMap) } } : {}),
      Annotations: req.annotations ?? null,
    },
    Mounts: mountsView(r),
    Config: {
      Hostname: c.hostname,
      Domainname: c.domainname,
      User: c.spec.user,
      Tty: c.tty,
      OpenStdin: c.openStdin,
      AttachStdin: c.attach?.stdin ?? c.openStdin,
      AttachStdout: c.attach?.stdout ?? true,
      AttachStderr: c.attach?.stderr ?? true,
      Env: plan.process?.env ?? [],
      Cmd: req.command?.length ? req.command : c.imageConfig.Cmd ?? null,
      Entrypoint: req.entrypoint ?? c.imageConfig.Entrypoint ?? null,
      Image: c.image,
      WorkingDir: plan.process?.cwd ?? '',
      Labels: c.labels,
      ...(c.exposedPorts?.length ? { ExposedPorts: Object.fromEntries(c.exposedPorts.map((p) => [p, {}])) } : {}),
      StopSignal: c.stopSignal,
      StopTimeout: c.stopTimeout,
      ...(c.health ? { Healthcheck: healthcheckView(c.health) } : req.noHealthcheck ? { Healthcheck: { Test: ['NONE'] } } : {}),
    },
    NetworkSettings: {
      IPAddress: primary?.ipv4?.split('/')[0] ?? '',
      Gateway: primary?.gateway ?? '',
      MacAddress: primary?.mac ?? '',
      Ports: ports,
      Networks: Object.fromEntries(r.networks.map((n) => [n.network, {
        IPAddress: n.ipv4?.split('/')[0] ?? '', IPPrefixLen: Number(n.ipv4?.split('/')[1] ?? 0), Gateway: n.gateway ?? '',
        GlobalIPv6Address: n.ipv6?.split('/')[0] ?? '', MacAddress: n.mac ?? '', Aliases: n.aliases ?? [],
      }])),
    },
  };
}
