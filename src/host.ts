/**
 * Facts about the host, probed once per command and passed down (runc's specconv lesson: generators
 * never probe the host themselves, so they stay pure and testable without root).
 */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface HostFacts {
  /** hybrid: v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified (this CI) */
  cgroupMode: CgroupMode;
  /** Hard rlimits of this process, by OCI name (RLIMIT_NOFILE ...); a spec must never ask for more. */
  rlimitHard: Record<string, number>;
  /** Absolute paths of the host tools Berth drives. */
  tools: { runc: string; conmon: string; catatonit?: string };
  /** The host's /etc/resolv.conf text, for containers that get no DNS of Berth's own. */
  resolvConf: string;
  /** CPUs online, for --cpus range checks */
  cpus: number;
}
