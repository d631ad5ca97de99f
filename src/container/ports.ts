/**
 * What the container layer uses of the layers below it, and nothing more: each port is a subset of the
 * real interface (Pick), so the list of what is used lives here while the signatures live in one place.
 */
import type { HostFacts } from '../host.js';
import type { Snapshotter } from '../storage/index.js';
import type { ImageStore } from '../image/index.js';
import type * as bundle from '../bundle/index.js';
import type { BundleInput, ImageConfig, Spec, SpecPlan, PlanResult, LinuxResources, Process, Mount } from '../bundle/index.js';
import type { NetworkManager, NetworkPlan, SandboxStatus, SandboxEndpointStatus } from '../network/index.js';
import type { Cgroups, HealthTimer, LogRotator, Monitor, Runc } from '../runtime/index.js';
import type { MountPoint, VolumeManager } from '../volume/index.js';
import type { UsernsPort } from './userns.js';

export type { MountPoint };
export type { BundleInput, ImageConfig, Spec, SpecPlan, PlanResult, LinuxResources, Process, Mount, NetworkPlan, SandboxStatus, SandboxEndpointStatus };

export type ImagePort = Pick<ImageStore, 'resolve' | 'ensureDefault' | 'inspect' | 'commit'>;

export type BundlePort = Pick<typeof bundle, 'planSpec' | 'finishSpec' | 'execProcess' | 'writeBundle' | 'checkRootfs' | 'readUserDb' | 'parseResources'
  | 'statDevices' | 'devicePathsOf' | 'readHostCapabilities' | 'listHostDevices'>;

export interface RuntimePort {
  runc: Pick<Runc, 'start' | 'state' | 'kill' | 'delete' | 'pause' | 'resume' | 'update' | 'ps' | 'list' | 'exec'>;
  monitor: Pick<Monitor, 'create' | 'exitStatus' | 'exited' | 'clearExit' | 'waitExit' | 'readLog' | 'attach' | 'pid' | 'alive'>;
  cgroups: Pick<Cgroups, 'stats' | 'remove' | 'oomKilled'>;
  healthTimer: HealthTimer;
  logRotator: LogRotator;
}

export type NetworkPort = Pick<NetworkManager, 'plan' | 'attach' | 'detach' | 'reconcile' | 'repair' | 'connect' | 'disconnect'>;

export type VolumePort = Pick<VolumeManager, 'plan' | 'attach' | 'detach' | 'mount' | 'unmount' | 'populate'>;

export interface ContainerDeps {
  host: HostFacts;
  images: ImagePort;
  snapshots: Snapshotter;
  bundle: BundlePort;
  runtime: RuntimePort;
  network: NetworkPort;
  volumes: VolumePort;
  /**
   * argv of the command the monitor runs when the container exits (`berth container cleanup ID`), which
   * may stand down while the process whose pid is in `attachedPidFile` is alive.
   */
  cleanupCommand: (id: string, attachedPidFile: string) => string[];
  /** argv of `berth container cleanup ID` run as the restarter of a container whose monitor was lost (lost.ts) */
  restartCommand: (id: string) => string[];
  /** OCI runtimes by name, for --runtime (the engine config's runtimes, plus runc), and the default's name. */
  runtimes: { default: string; paths: Record<string, string> };
  /** argv of one healthcheck of the container by its timer (`berth healthcheck tick ID`): prints the next delay */
  healthTickCommand: (id: string) => string[];
  /** auto ranges (host-wide) and the engine's default mode */
  userns: UsernsPort;
}
