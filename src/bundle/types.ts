import type { HostFacts } from '../host.js';
import type { CreateRequest } from '../options.js';
import type { LinuxIDMapping, Mount, Spec } from '../../runtime-spec/types.js';
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
  /** Docker's HEALTHCHECK: durations in nanoseconds, 0 or absent meaning "the default" */
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number } | null;
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

/**
 * What planSpec needs, all known at create: the request, the image config and host facts, plus the files
 * the flags name, already read by the container layer.
 */
export interface PlanInput {
  id: string;
  imageConfig: ImageConfig;
  request: CreateRequest;
  host: HostFacts;
  /** Only 'host' counts here (the namespace is left out of the spec); paths to join are given at start. */
  namespaces: { network?: NamespaceChoice; pid?: NamespaceChoice; ipc?: NamespaceChoice; uts?: NamespaceChoice };
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
  /** The text of the file named by --security-opt seccomp=PATH. */
  seccompProfileText?: string;
  /** The texts of the --env-file files, in order. */
  envFileText?: string[];
  /** Node's process.arch naming the seccomp architectures; defaults to this process's. */
  arch?: string;
  /** The container gets a user namespace of its own (its maps come at start, see StartInput.idmap). */
  userns?: boolean;
}

/** What finishSpec adds at each start. */
export interface StartInput {
  rootfsPath: string;
  userDb: UserDb;
  /**
   * Namespaces to join ({ path }), or 'host' where a joined container turned out to use the host's. `user`:
   * the user namespace that owns the joined netns (made with it by the network layer), joined by runc first.
   */
  namespaces: { network?: NamespaceChoice; pid?: NamespaceChoice; ipc?: NamespaceChoice; uts?: NamespaceChoice; user?: { path: string } };
  /** Host paths bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  files: { hostname?: string; hosts?: string; resolvConf?: string };
  /** Every device node of the host (host-io.ts listHostDevices), given to --privileged containers as Docker does. */
  hostDevices?: Record<string, DeviceInfo>;
  /** Variables known only at start (Docker's link variables); the planned env wins over them. */
  extraEnv?: string[];
  /** The user namespace's maps, when the plan has one (allocated at create, kept in the record). */
  idmap?: { uid: LinuxIDMapping[]; gid: LinuxIDMapping[] };
}

/**
 * A container's spec as planned at create (planSpec), kept in its record: JSON, immutable but for `update`
 * (resources). `spec` lacks the rootfs path, the resolved user and HOME, namespace paths and mounts, which
 * finishSpec adds.
 */
export interface SpecPlan {
  spec: Spec;
  mounts: {
    /** the kernel filesystems (/proc, /dev, /dev/shm, ...) */
    system: Mount[];
    /** --init's binary */
    init?: Mount;
    /** --tmpfs, volumes and binds: they replace a system mount at the same place */
    user: Mount[];
  };
  /** -u, or the image's User: resolved against the image's passwd at start ('' is root) */
  user: string;
  /** --group-add: names resolved against the image's /etc/group at start, numbers as they are */
  groupAdd?: string[];
  privileged: boolean;
}

export interface PlanResult {
  plan: SpecPlan;
  /** Things the user asked for that Berth ignores or weakens, for the CLI to print. */
  warnings: string[];
}

/** Everything buildSpec needs: both steps' inputs. */
export type BundleInput = PlanInput & StartInput;

export interface BuildResult {
  spec: Spec;
  /** Things the user asked for that Berth ignores or weakens, for the CLI to print. */
  warnings: string[];
}
