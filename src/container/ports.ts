/**
 * What the container layer needs from the layers below it, and nothing more. The real layers satisfy
 * these structurally (checked where api/engine.ts wires them), so the container layer reads as a
 * composition of small promises rather than a tour of every module's full surface.
 */
import type { Readable, Writable } from 'node:stream';
import type { LogEntry, LogOptions } from '../types.js';
import type { HostFacts } from '../host.js';
import type { Digest } from '../ids.js';
import type { CreateRequest, NetworkRequest, ResourceRequest } from '../options.js';
import type { Snapshotter } from '../storage/index.js';
import type { BundleInput, DeviceInfo, ImageConfig, Spec, LinuxResources, Process, Mount } from '../bundle/index.js';
import type { SandboxStatus, SandboxEndpointStatus } from '../network/index.js';

export type { BundleInput, ImageConfig, Spec, LinuxResources, Process, Mount, SandboxStatus, SandboxEndpointStatus };

export interface ResolvedImage {
  id: string;
  config: { config?: ImageConfig };
  layers: Digest[];
}

export interface ImagePort {
  resolve(ref: string): Promise<ResolvedImage>;
  ensureDefault(): Promise<string>;
}

export interface BundlePort {
  buildSpec(input: BundleInput): { spec: Spec; warnings: string[] };
  writeBundle(dir: string, spec: Spec): Promise<void>;
  readUserDb(rootfs: string): Promise<{ passwd: string; group: string }>;
  parseResources(req: ResourceRequest, host: HostFacts): LinuxResources;
  /** Device numbers for --device and the blkio throttles, read here so that buildSpec stays pure. */
  statDevices(paths: Iterable<string>): Promise<Record<string, DeviceInfo>>;
  devicePathsOf(req: CreateRequest): string[];
  /** The engine's own capabilities: --privileged and --cap-add ALL get these, as with podman. */
  readHostCapabilities(): Promise<string[]>;
  listHostDevices(): Promise<Record<string, DeviceInfo>>;
}

export interface RuntimeStateInfo {
  status: 'created' | 'running' | 'paused' | 'stopped';
  pid: number;
}

export interface RuntimePort {
  create(req: { id: string; bundle: string; logPath: string; tty: boolean; openStdin: boolean; exitCommand?: string[] }): Promise<{ pid: number }>;
  start(id: string): Promise<void>;
  state(id: string): Promise<RuntimeStateInfo | undefined>;
  kill(id: string, signal: string | number, opts?: { all?: boolean }): Promise<void>;
  delete(id: string, opts?: { force?: boolean }): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  update(id: string, resources: LinuxResources): Promise<void>;
  ps(id: string): Promise<number[]>;
  list(): Promise<string[]>;
  exitStatus(id: string): Promise<{ exitCode: number; finishedAt: string; oomKilled?: boolean } | undefined>;
  clearExit(id: string): Promise<void>;
  waitExit(id: string, signal?: AbortSignal): Promise<number>;
  readLog(logPath: string, opts: LogOptions & { stopWhen?: () => Promise<boolean>; signal?: AbortSignal }): AsyncIterable<LogEntry>;
  attach(id: string, io: { stdin?: Readable; stdout?: Writable; stderr?: Writable; logPath: string; tty: boolean }, stopWhen: () => Promise<boolean>): Promise<void>;
  exec(id: string, req: { process: Process; detach: boolean; io?: { stdin?: Readable; stdout?: Writable; stderr?: Writable } }): Promise<{ exitCode?: number; pid?: number }>;
  stats(cgroupsPath: string): Promise<{ cpuUsageNs: number; memoryUsage: number; memoryLimit: number; blkioRead: number; blkioWrite: number; pids: number }>;
  removeCgroup(cgroupsPath: string): Promise<void>;
}

export interface NetworkPort {
  attach(ctr: {
    id: string; name: string; hostname: string; domainname?: string; request: NetworkRequest;
    exposedPorts: string[]; sharedWith?: { id: string }; links?: { id: string; name: string; alias: string }[];
  }): Promise<SandboxStatus>;
  detach(ctrId: string): Promise<void>;
  reconcile(liveContainerIds: ReadonlySet<string>): Promise<string[]>;
  connect(network: string, ctrId: string, opts?: { ip?: string; ip6?: string; aliases?: string[] }): Promise<SandboxStatus>;
  disconnect(network: string, ctrId: string, opts?: { force?: boolean }): Promise<SandboxStatus>;
}

export interface ContainerDeps {
  host: HostFacts;
  images: ImagePort;
  snapshots: Snapshotter;
  bundle: BundlePort;
  runtime: RuntimePort;
  network: NetworkPort;
  /**
   * argv of the command the monitor runs when the container exits (`berth container cleanup ID`), which
   * may stand down while the process whose pid is in `attachedPidFile` is alive.
   */
  cleanupCommand: (id: string, attachedPidFile: string) => string[];
}
