import type { ContainerInspect, ContainerSummary } from '../types.js';
import type { Spec } from './ports.js';
import { type ContainerRecord, type containerPaths } from './record.js';
import { dockerStatus, statusText } from './status.js';

export function summaryView(r: ContainerRecord): ContainerSummary {
  return {
    id: r.id,
    names: [r.name],
    image: r.image,
    imageId: r.imageId,
    command: [r.path, ...r.args].filter(Boolean).join(' '),
    created: r.created,
    state: r.state,
    status: statusText(r),
    ports: r.ports,
    labels: r.labels,
    networks: r.networks.map((n) => n.network).filter(Boolean).length ? r.networks.map((n) => n.network) : [r.networkMode],
    exitCode: r.state === 'exited' ? r.exitCode : undefined,
  };
}

/** `docker inspect` of a container: PascalCase and field names as Docker's, since scripts parse them. */
export function inspectView(r: ContainerRecord, spec: Spec | undefined, paths: ReturnType<typeof containerPaths>): ContainerInspect {
  const req = r.request;
  const res = req.resources ?? {};
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of r.ports) (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  const primary = r.networks[0];
  return {
    Id: r.id,
    Created: r.created,
    Path: r.path,
    Args: r.args,
    State: {
      Status: dockerStatus(r.state),
      Running: r.state === 'running' || r.state === 'paused',
      Paused: r.state === 'paused',
      Restarting: r.state === 'restarting',
      OOMKilled: r.oomKilled,
      Dead: r.state === 'dead',
      Pid: r.pid,
      ExitCode: r.exitCode,
      Error: r.error,
      StartedAt: r.startedAt,
      FinishedAt: r.finishedAt,
    },
    Image: r.imageId,
    ResolvConfPath: paths.resolvConf,
    HostnamePath: paths.hostname,
    HostsPath: paths.hosts,
    LogPath: paths.log,
    Name: `/${r.name}`,
    RestartCount: r.restartCount,
    Driver: 'overlay',
    Platform: 'linux',
    HostConfig: {
      AutoRemove: r.autoRemove,
      NetworkMode: r.networkMode,
      PortBindings: ports,
      RestartPolicy: { Name: r.restartPolicy.name, MaximumRetryCount: r.restartPolicy.maxRetries },
      Privileged: !!req.privileged,
      ReadonlyRootfs: !!req.readOnly,
      CapAdd: req.capAdd ?? null,
      CapDrop: req.capDrop ?? null,
      SecurityOpt: req.securityOpt ?? null,
      Binds: req.volumes ?? null,
      Links: req.network?.links ?? null,
      Dns: req.network?.dns ?? [],
      DnsSearch: req.network?.dnsSearch ?? [],
      DnsOptions: req.network?.dnsOption ?? [],
      ExtraHosts: req.network?.addHost ?? null,
      PidMode: req.pid ?? '',
      IpcMode: req.ipc ?? 'private',
      UTSMode: req.uts ?? '',
      ShmSize: spec?.mounts?.find((m) => m.destination === '/dev/shm')?.options?.find((o) => o.startsWith('size='))?.slice(5) ?? null,
      Init: req.init ?? null,
      Memory: spec?.linux?.resources?.memory?.limit ?? 0,
      MemorySwap: spec?.linux?.resources?.memory?.swap ?? 0,
      MemoryReservation: spec?.linux?.resources?.memory?.reservation ?? 0,
      NanoCpus: res.cpus !== undefined ? Math.round(Number(res.cpus) * 1e9) : 0,
      CpuShares: spec?.linux?.resources?.cpu?.shares ?? 0,
      CpuPeriod: spec?.linux?.resources?.cpu?.period ?? 0,
      CpuQuota: spec?.linux?.resources?.cpu?.quota ?? 0,
      CpusetCpus: res.cpusetCpus ?? '',
      CpusetMems: res.cpusetMems ?? '',
      PidsLimit: spec?.linux?.resources?.pids?.limit ?? null,
      BlkioWeight: res.blkioWeight ?? 0,
      OomKillDisable: !!res.oomKillDisable,
      Tmpfs: req.tmpfs ?? null,
      Ulimits: req.ulimits ?? null,
    },
    Mounts: (spec?.mounts ?? []).filter((m) => m.type === 'bind' && !m.destination.startsWith('/etc/'))
      .map((m) => ({ Type: 'bind', Source: m.source, Destination: m.destination, RW: !m.options?.includes('ro') })),
    Config: {
      Hostname: r.hostname,
      Domainname: req.domainname ?? '',
      User: req.user ?? '',
      Tty: r.tty,
      OpenStdin: r.openStdin,
      Env: spec?.process?.env ?? [],
      Cmd: req.command ?? null,
      Entrypoint: req.entrypoint ?? null,
      Image: r.image,
      WorkingDir: spec?.process?.cwd ?? '',
      Labels: r.labels,
      StopSignal: r.stopSignal,
      StopTimeout: r.stopTimeout,
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
