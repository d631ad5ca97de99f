/**
 * Named crash points for tests (etcd's gofail, FreeBSD's fail points, in miniature). A test starts a
 * berth command with `BERTH_FAILPOINT=<name>` and the process SIGKILLs itself when it reaches that point,
 * so "killed between the snapshot and the record" is a test that lands exactly there every time instead of
 * a timing guess. With the variable unset this is one property read.
 *
 * Names are `<layer>.<verb>.<where>` (e.g. `container.create.after-snapshot`); every name in use is
 * listed in FAILPOINTS so that a test naming one that no code reaches fails instead of passing silently.
 */
export const FAILPOINTS = [
  'storage.ingest.mid-blob',
  'storage.unpack.mid-layer',
  'storage.shift.before-rename',
  'storage.snapshot.after-mount',
  'storage.probe.after-mount',
  'container.create.after-snapshot',
  'container.run.after-veth',
  'container.run.after-slirp',
  'rootless.pause.before-map',
  'container.start.after-health-timer',
  'container.rm.after-runc-delete',
  'container.rm.mid-folder',
  'container.catalog.before-rename',
  'network.firewall.mid-rewrite',
  'network.create.mid',
  'network.rm.mid',
  'network.overlay.before-move',
  'container.freeze.paused',
  'volume.copyup.mid-copy',
  'volume.import.before-rename',
  'registry.pull.mid-layers',
  'registry.pull.before-record',
  'registry.push.before-manifest',
  'cluster.lease.before-hooks',
  'machine.create.after-copy',
] as const;

export type FailpointName = (typeof FAILPOINTS)[number];

// Read once: the variable belongs to the process (set by a test on the command it starts), never to the API.
const armed = process.env.BERTH_FAILPOINT;

/** SIGKILLs this process when `name` is the armed failpoint. */
export function failpoint(name: FailpointName): void {
  if (armed === undefined || armed !== name) return;
  process.kill(process.pid, 'SIGKILL');
}
