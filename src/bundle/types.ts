import type { HostFacts } from '../host.js';
import type { CreateRequest } from '../options.js';
import type { Mount } from '../../runtime-spec/types.js';
import type { UserDb } from './user.js';

/** The `config` object of an OCI image config, in Docker's field names. */
export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, object>;
}

/** A host device node, as host-io.ts statDevices reads it. */
export interface DeviceInfo {
  type: 'c' | 'b';
  major: number;
  minor: number;
  uid: number;
  gid: number;
  /** permission bits only */
  fileMode: number;
}

/**
 * How the container gets a namespace: omitted = a fresh one, 'host' = none of its own (the kind is left
 * out of the spec), { path } = join an existing one (e.g. /proc/PID/ns/pid of another container).
 */
export type NamespaceChoice = { path: string } | 'host';

/** Everything buildSpec needs, already read from disk and resolved by the container layer. */
export interface BundleInput {
  id: string;
  rootfsPath: string;
  imageConfig: ImageConfig;
  request: CreateRequest;
  host: HostFacts;
  userDb: UserDb;
  namespaces: { network?: NamespaceChoice; pid?: NamespaceChoice; ipc?: NamespaceChoice; uts?: NamespaceChoice };
  /** Host paths bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  files: { hostname?: string; hosts?: string; resolvConf?: string };
  /** Volumes and bind mounts, resolved by the container layer. */
  extraMounts: Mount[];
  cgroupsPath: string;
  /** Host path of the init (catatonit) for --init. */
  initPath?: string;
  /** Host device nodes named by --device, --device-read-bps and --device-write-bps, keyed by host path. */
  devices?: Record<string, DeviceInfo>;
  /**
   * The capabilities the engine holds (its bounding set, host-io.ts readHostCapabilities); --privileged and
   * --cap-add ALL give these. Omitted: all that Linux defines.
   */
  hostCapabilities?: string[];
  /** Every device node of the host (host-io.ts listHostDevices), given to --privileged containers as Docker does. */
  hostDevices?: Record<string, DeviceInfo>;
  /** The text of the file named by --security-opt seccomp=PATH. */
  seccompProfileText?: string;
  /** The texts of the --env-file files, in order. */
  envFileText?: string[];
  /** Node's process.arch naming the seccomp architectures; defaults to this process's. */
  arch?: string;
}

export interface BuildResult {
  spec: import('../../runtime-spec/types.js').Spec;
  /** Things the user asked for that Berth ignores or weakens, for the CLI to print. */
  warnings: string[];
}
