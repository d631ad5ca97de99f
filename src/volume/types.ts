/**
 * The volume layer's words. A volume is a named store object (`ROOT/volumes/<name>/`) that outlives
 * containers; a mount point is one entry of a container's `.Mounts`, planned once at create.
 */

/** What a driver sees of a volume: its record and the folder the store gave it. */
export interface VolumeInfo {
  readonly name: string;
  readonly driver: string;
  /** -o KEY=VALUE, as given (checked by the driver's `checkOptions` before the volume exists) */
  readonly options: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** the volume's folder in the store, for the driver's own files (local keeps `_data` there) */
  readonly dir: string;
}

/**
 * A volume driver (Docker's volume plugin API, in-process and typed). Life of a volume:
 * checkOptions → create → (mount → unmount)* → remove. `mount` is called when the first running
 * container needs the volume and `unmount` when the last one has stopped, under the volume's lock;
 * every method is idempotent, so a command killed half-way is finished by the next.
 */
export interface VolumeDriver {
  readonly name: string;
  /** Refuses options the driver does not take (InvalidArgumentError), before anything is made. */
  checkOptions(options: Readonly<Record<string, string>>): void;
  /** Makes the volume's storage. */
  create(vol: VolumeInfo): Promise<void>;
  /** Deletes the volume's data. "Already gone" is success. */
  remove(vol: VolumeInfo): Promise<void>;
  /** The host path bind-mounted into containers (Docker's Mountpoint). Pure. */
  mountpoint(vol: VolumeInfo): string;
  /** Makes the mountpoint usable (a tmpfs or a device mounted on it). */
  mount(vol: VolumeInfo): Promise<void>;
  unmount(vol: VolumeInfo): Promise<void>;
  /** Whether the mountpoint's contents vanish at unmount (tmpfs): an interrupted copy-up is then simply redone. */
  volatile?(vol: VolumeInfo): boolean;
}

/** volumes/<name>/volume.json */
export interface VolumeRecord {
  version: 1;
  name: string;
  driver: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  createdAt: string;
  /** made for one container (-v /path, an image VOLUME): `rm -v` and `run --rm` remove it */
  anonymous: boolean;
  /**
   * Set before copying image content into a mounted volume (tmpfs, a bind device) and cleared after: a
   * copy killed half-way is found and reported, never taken for a complete one. A plain local volume
   * needs no flag: its copy is made aside and renamed into place in one step.
   */
  copying?: boolean;
}

export interface VolumeCreateRequest {
  /** generated (64 hex digits) when absent, as Docker does */
  name?: string;
  driver?: string;
  options?: Record<string, string>;
  labels?: Record<string, string>;
}

/** Docker's `volume inspect`, plus the containers using it. */
export interface VolumeDetails {
  record: VolumeRecord;
  mountpoint: string;
  /** ids of the containers whose config names the volume */
  users: string[];
}

/**
 * One mount of a container, as Docker's `.Mounts` shows it, planned at create from -v, --mount,
 * --volumes-from and the image's VOLUMEs (parse.ts). `--tmpfs` stays with the bundle layer, as Docker
 * keeps it in HostConfig.Tmpfs and out of `.Mounts`.
 */
export interface MountPoint {
  type: 'bind' | 'volume' | 'tmpfs';
  /** bind: the host path; volume: the volume's mountpoint (filled in at create); tmpfs: '' */
  source: string;
  destination: string;
  /** volume only */
  name?: string;
  driver?: string;
  /** Docker's Mode: the -v options as written ('z', 'ro', 'ro,Z'), '' for --mount */
  mode: string;
  rw: boolean;
  /** bind only ('rprivate' by default) */
  propagation: string;
  /** volume: made for this container (-v /path, an image VOLUME) */
  anonymous?: boolean;
  /** volume: fill a new, empty volume with what the image has at the destination (not volume-nocopy) */
  copyUp?: boolean;
  /** volume: how to create it on first use (--mount volume-driver, volume-opt, volume-label) */
  create?: { driver?: string; options?: Record<string, string>; labels?: Record<string, string> };
  /** bind: -v makes a missing source folder; --mount type=bind refuses it at create */
  createSource?: boolean;
  /** tmpfs: mount options (size=, mode=) */
  tmpfsOptions?: string[];
  /** bind: nonrecursive (bind-nonrecursive) */
  nonRecursive?: boolean;
  /** -v ...:U (podman): the source is given, recursively, to the container's user (its host ids) at each start */
  chown?: boolean;
}
