import os from 'node:os';
import path from 'node:path';
import type { EngineApi, EngineEvent, RemoteEngineApi } from '../../api/index.js';
import { NotFoundError } from '../../errors.js';
import { type Command, defineCommand, FILTER_OPTION, FORCE_OPTION, PRUNE_FILTER_OPTION } from '../command.js';
import { bytesSize, humanSize } from '../format.js';
import { UsageError } from '../parser.js';
import { confirm } from '../report.js';
import { parseTemplate } from '../template.js';
import { VERSION } from '../version.js';
import { networkInspectView } from '../views.js';
import { printInspect } from './containers.js';

const prune = defineCommand({
  name: 'prune', group: 'system',
  usage: '[OPTIONS]', summary: 'Remove unused data',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused images not just dangling ones' },
    { name: 'volumes', type: 'bool', help: 'Prune anonymous volumes' },
    FORCE_OPTION, PRUNE_FILTER_OPTION,
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const what = ['all stopped containers', 'all networks not used by at least one container',
      ...(o.volumes ? ['all anonymous volumes not used by at least one container'] : []), o.all ? 'all images without at least one container associated to them' : 'all dangling images'];
    if (!o.force && !(await confirm(ctx, `This will remove:\n${what.map((w) => `  - ${w}`).join('\n')}\n`))) return 0;
    const res = await (await ctx.engine()).system.prune({ all: o.all, volumes: o.volumes, filters: o.filter });
    if (res.containers.length) ctx.print('Deleted Containers:', ...res.containers, '');
    if (res.networks.length) ctx.print('Deleted Networks:', ...res.networks, '');
    if (res.volumes?.length) ctx.print('Deleted Volumes:', ...res.volumes, '');
    if (res.images.length) ctx.print('Deleted Images:', ...res.images.map((d) => `deleted: ${d}`), '');
    ctx.print(`Total reclaimed space: ${humanSize(res.spaceReclaimed)}`);
  },
});

const reset = defineCommand({
  name: 'reset', group: 'system',
  usage: '[OPTIONS]', summary: 'Remove every container, network and image of this root, and the host objects made for them',
  options: [FORCE_OPTION], maxArgs: 0,
  async action(ctx, o) {
    if (!o.force && !(await confirm(ctx, 'This will remove all containers, networks and images of this root.'))) return 0;
    await (await ctx.engine()).system.reset();
  },
});

/**
 * A systemd unit that runs `system boot` once at start-up, after the network and local filesystems,
 * with this same program and store (the root and runroot the printing command resolved).
 */
export function bootUnit(argv: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `"${a.replace(/(["\\])/g, '\\$1')}"`);
  return [
    '[Unit]',
    'Description=Berth: start the containers whose restart policy says they should run',
    'Wants=network-online.target',
    'After=network-online.target local-fs.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${argv.map(quote).join(' ')}`,
    'RemainAfterExit=yes',
    'TimeoutStartSec=0',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

const boot = defineCommand({
  name: 'boot', group: 'system',
  usage: '[OPTIONS]', summary: 'Start, once at host start-up, the containers whose restart policy says they should run',
  options: [{ name: 'print-unit', type: 'bool', help: 'Print a systemd unit that runs this command at boot, and do nothing else' }],
  maxArgs: 0,
  async action(ctx, o) {
    const engine = await ctx.engine();
    if (o.printUnit) {
      const config = ctx.globals.config ? ['--config', path.resolve(ctx.globals.config)] : [];
      return void ctx.stdout.write(bootUnit([process.execPath, path.resolve(process.argv[1] ?? 'berth'), '--root', engine.root, '--runroot', engine.runroot, ...config, 'system', 'boot']));
    }
    const { started, failed } = await engine.system.boot();
    for (const id of started) ctx.print(id);
    for (const f of failed) ctx.stderr.write(`cannot start container ${f.name}: ${f.error}\n`);
    return failed.length ? 1 : 0;
  },
});

const info = defineCommand({
  name: 'info', group: 'system', shortcuts: ['info'],
  usage: '[OPTIONS]', summary: 'Display system-wide information',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  maxArgs: 0,
  async action(ctx, o) {
    const server = await (await ctx.engine()).system.info();
    const { context } = await ctx.target();
    // Docker's shape: the server's fields at the top, the client's under ClientInfo.
    const data = { ...server, ClientInfo: { Version: VERSION, Context: context, Debug: ctx.globals.logLevel === 'debug', Plugins: [], Warnings: null } };
    if (o.format) return ctx.print(o.format === 'json' ? JSON.stringify(data) : parseTemplate(o.format).render(data));
    const d = server as Record<string, unknown>;
    ctx.print(
      'Client:', ` Version:    ${VERSION}`, ` Context:    ${context}`, '',
      'Server:', ` Containers: ${d.Containers}`, `  Running: ${d.ContainersRunning}`, `  Paused: ${d.ContainersPaused}`, `  Stopped: ${d.ContainersStopped}`,
      ` Images: ${d.Images}`, ` Server Version: ${d.ServerVersion}`, ` Storage Driver: ${d.Driver}`,
      ...((d.DriverStatus ?? []) as string[][]).map(([k, v]) => `  ${k}: ${v}`), ...rootlessLines(d), ` Cgroup Driver: ${d.CgroupDriver}`,
      ` Cgroup Version: ${d.CgroupVersion} (${d.CgroupMode})`, ` Default Runtime: ${d.DefaultRuntime}`, ` Monitor: ${d.Monitor}`,
      ` Kernel Version: ${d.KernelVersion}`, ` OSType: ${d.OSType}`, ` Architecture: ${d.Architecture}`, ` CPUs: ${d.NCPU}`,
      ` Total Memory: ${bytesSize(Number(d.MemTotal))}`, ` Name: ${d.Name}`, ` Root: ${d.DockerRootDir}`, ` RunRoot: ${d.RunRoot}`,
      ...(d.ClusterStore ? [` Cluster Store: ${d.ClusterStore}`] : []), ...(d.ClusterAdvertise ? [` Cluster Advertise: ${d.ClusterAdvertise}`] : []),
      ...networkLines(d),
    );
  },
});

/** Whether Berth runs rootless, its user namespace's maps, and what gives containers their network. */
function rootlessLines(d: Record<string, unknown>): string[] {
  type Line = { ContainerID: number; HostID: number; Size: number };
  const maps = d.IdMappings as { UidMap: Line[]; GidMap: Line[] } | undefined;
  const text = (m: Line[]) => m.map((l) => `${l.ContainerID}:${l.HostID}:${l.Size}`).join(', ');
  return [
    ` Rootless: ${d.Rootless ? 'yes' : 'no'}`,
    ...(maps ? [`  UID Map: ${text(maps.UidMap)}`, `  GID Map: ${text(maps.GidMap)}`] : []),
    ` Network Helper: ${d.NetworkHelper}`,
    ` Container User Namespace: ${d.ContainerUserns === 'rootless' ? "the user's (rootless)" : d.ContainerUserns === 'host' ? 'host (no userns-remap)' : `${String(d.ContainerUserns)} (userns-remap)`}`,
  ];
}

/** The default bridge and the address pools, as `docker info` shows its pools; then the warnings. */
function networkLines(d: Record<string, unknown>): string[] {
  const bridge = d.DefaultBridge as { Name: string; Subnet?: string; Gateway?: string; SubnetPending: boolean; MTU: number; Bip?: string } | undefined;
  const pools = (d.DefaultAddressPools ?? []) as { Base: string; Size: number }[];
  const warnings = (d.Warnings ?? []) as string[];
  return [
    ...(bridge ? [` Default Bridge: ${bridge.Name}`, `   Subnet: ${bridge.Subnet ?? ''}${bridge.SubnetPending ? ' (first choice; checked when the bridge is made)' : ''}`,
      `   Gateway: ${bridge.Gateway ?? ''}`, `   MTU: ${bridge.MTU}`, ...(bridge.Bip ? [`   bip: ${bridge.Bip}`] : [])] : []),
    ' Default Address Pools:', ...pools.map((p) => `   Base: ${p.Base}, Size: ${p.Size}`),
    ...warnings.map((w) => `WARNING: ${w}`),
  ];
}

/** `docker events` plain lines: "TIME TYPE ACTION ID (k=v, ...)". */
export function eventLine(e: EngineEvent): string {
  const attrs = Object.entries(e.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(', ');
  return `${e.time} ${e.type} ${e.action} ${e.id}${attrs ? ` (${attrs})` : ''}`;
}

/** Docker's JSON event message, so that `--format '{{.Actor.Attributes.name}}'` works as there. */
export function eventMessage(e: EngineEvent): Record<string, unknown> {
  const ms = Date.parse(e.time);
  const seconds = Math.floor(ms / 1000);
  const nanos = /\.(\d+)/.exec(e.time)?.[1]?.padEnd(9, '0').slice(0, 9) ?? '000000000';
  return {
    ...(e.type === 'container' ? { status: e.action, id: e.id, from: e.attributes.image ?? '' } : {}),
    Type: e.type, Action: e.action, Actor: { ID: e.id, Attributes: e.attributes }, scope: 'local',
    time: seconds, timeNano: `${seconds}${nanos}`,
  };
}

const events = defineCommand({
  name: 'events', group: 'system', shortcuts: ['events'],
  usage: '[OPTIONS]', summary: 'Get real time events from the engine',
  options: [
    { name: 'since', type: 'string', help: 'Show all events created since timestamp' },
    { name: 'until', type: 'string', help: 'Stream events until this timestamp' },
    FILTER_OPTION,
    { name: 'format', type: 'string', help: "Format the output: 'json' or a Go template" },
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const engine = await ctx.engine();
    const abort = new AbortController();
    const stop = ctx.onSignal(() => abort.abort());
    const tpl = o.format && o.format !== 'json' ? parseTemplate(o.format) : undefined;
    try {
      for await (const e of engine.system.events({ since: o.since, until: o.until, filters: o.filter, signal: abort.signal })) {
        if (o.format === 'json') ctx.print(JSON.stringify(eventMessage(e)));
        else ctx.print(tpl ? tpl.render(eventMessage(e)) : eventLine(e));
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    } finally {
      stop();
    }
  },
});

/**
 * Docker's `docker version` JSON (Client and Server), so that `{{.Server.Version}}` and `{{.Client.Version}}`
 * work. Berth has no daemon: the server is this same program, and Node stands where Go does.
 */
export function versionInfo(): { Client: Record<string, unknown>; Server: Record<string, unknown> } {
  const common = { Version: VERSION, NodeVersion: process.version, Os: process.platform, Arch: process.arch };
  const kernel = os.release();
  return {
    Client: { Platform: { Name: 'Berth' }, ...common, Context: 'default' },
    Server: {
      Platform: { Name: 'Berth' },
      Components: [{ Name: 'Engine', Version: VERSION, Details: { NodeVersion: common.NodeVersion, Os: common.Os, Arch: common.Arch, KernelVersion: kernel } }],
      ...common, KernelVersion: kernel,
    },
  };
}

const version = defineCommand({
  name: 'version',
  usage: '[OPTIONS]', summary: 'Show the Berth version information',
  options: [{ name: 'format', short: 'f', type: 'string', help: "Format output: 'json' or a Go template" }],
  maxArgs: 0,
  async action(ctx, o) {
    const v = versionInfo();
    const target = await ctx.target();
    v.Client.Context = target.context;
    // A remote engine's server is the one that answers there, not this program.
    if (target.host) v.Server = await ((await ctx.engine()) as unknown as RemoteEngineApi).system.version();
    if (o.format) return ctx.print(o.format === 'json' ? JSON.stringify(v) : parseTemplate(o.format).render(v));
    const s = v.Server;
    const c = v.Client;
    if (target.host) {
      return ctx.print(
        'Client:', ` Version:           ${VERSION}`, ` Node version:      ${c.NodeVersion}`, ` OS/Arch:           ${c.Os}/${c.Arch}`, ` Context:           ${target.context}`, '',
        `Server: ${(s.Platform as { Name?: string } | undefined)?.Name ?? ''} (${target.host})`, ' Engine:', `  Version:          ${s.Version}`,
        `  API version:      ${s.ApiVersion}`, `  OS/Arch:          ${s.Os}/${s.Arch}`, `  Kernel Version:   ${s.KernelVersion}`,
      );
    }
    ctx.print(
      'Client:', ` Version:           ${VERSION}`, ` Node version:      ${s.NodeVersion}`, ` OS/Arch:           ${s.Os}/${s.Arch}`, ` Context:           ${target.context}`, '',
      'Server: Berth', ' Engine:', `  Version:          ${VERSION}`, `  Node version:     ${s.NodeVersion}`, `  OS/Arch:          ${s.Os}/${s.Arch}`,
      `  Kernel Version:   ${s.KernelVersion}`,
    );
  },
});

type Kind = 'container' | 'image' | 'network';
const INSPECTORS: Record<Kind, (e: EngineApi, ref: string, size: boolean) => Promise<unknown>> = {
  container: (e, ref, size) => e.containers.inspect(ref, { size }),
  image: (e, ref) => e.images.inspect(ref),
  network: async (e, ref) => networkInspectView(await e.networks.inspect(ref)),
};

const inspect = defineCommand({
  name: 'inspect',
  usage: '[OPTIONS] NAME|ID [NAME|ID...]', summary: 'Return low-level information on Berth objects',
  options: [
    { name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' },
    { name: 'type', type: 'string', help: 'Only inspect objects of the given type (container, image or network)' },
    { name: 'size', short: 's', type: 'bool', help: 'Display total file sizes if the type is container' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const kinds = Object.keys(INSPECTORS) as Kind[];
    if (o.type !== undefined && !kinds.includes(o.type as Kind)) throw new UsageError(`"${o.type}" is not a valid value for --type`);
    const engine = await ctx.engine();
    const tryKinds = o.type ? [o.type as Kind] : kinds;
    return printInspect(ctx, refs, async (ref) => {
      for (const kind of tryKinds) {
        try {
          return await INSPECTORS[kind](engine, ref, o.size);
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
      }
      throw new NotFoundError(o.type ? (o.type as Kind) : 'container', ref, 'list what exists with "berth ps -a", "berth images" or "berth network ls"');
    }, o.format);
  },
});

/**
 * The per-root cluster agent (src/cluster/agent-process.ts), started detached by the commands that need it;
 * hidden, as `container cleanup`. A second one for the same root exits 0 at once.
 */
const clusterAgent = defineCommand({
  name: 'cluster-agent', group: 'system', hidden: true,
  usage: '[OPTIONS]', summary: "Keep this host's cluster lease alive and follow the cluster store's changes",
  options: [
    { name: 'ttl', type: 'number', help: 'TTL of the host\'s lease in seconds (default 15)' },
    { name: 'idle-exit', type: 'number', help: 'Exit after the host has had nothing to keep for this many seconds (default 30; 0: never)' },
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const { runClusterAgent } = await import('../../api/cluster-agent.js');
    const abort = new AbortController();
    const stop = ctx.onSignal(() => abort.abort());
    try {
      await runClusterAgent({ ...ctx.globals, ttl: o.ttl, idleExitSeconds: o.idleExit, signal: abort.signal });
    } finally {
      stop();
    }
  },
});

export const systemCommands: Command[] = [prune, reset, boot, info, events, version, inspect, clusterAgent];
