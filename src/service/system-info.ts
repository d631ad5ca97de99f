/**
 * `/info`, `/events`, `/system/df` and `/auth`: engine.system's facts and event log and
 * engine.registries' login check, in the v1.41 shapes the docker CLI and dockerode read.
 */
import { readFileSync } from 'node:fs';
import type { EngineEvent } from '../types.js';
import { parseTime } from '../util/time.js';
import { eventFilter } from '../events.js';
import { ApiError } from './errors.js';
import { filtersParam, jsonLines, readJson, sendJson } from './http.js';
import { familiar, groupByImage, unixSeconds } from './images.js';
import type { Call, Router } from './router.js';

function hostOperatingSystem(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1]!;
  } catch { /* no os-release: the kernel's name below */ }
  return 'Linux';
}

async function info(call: Call): Promise<void> {
  const facts = await call.engine.system.info();
  const v1 = facts.CgroupVersion === '1';
  sendJson(call.res!, 200, {
    ...facts,
    // Berth's store: overlayfs layers under DockerRootDir (reported as Docker's driver name would be).
    Driver: facts.Driver ?? 'overlay',
    OperatingSystem: hostOperatingSystem(),
    OSVersion: '',
    // What the kernel and runc give every container here; the CLI warns when these are false.
    MemoryLimit: true, SwapLimit: true, KernelMemory: false, KernelMemoryTCP: false, CpuCfsPeriod: true, CpuCfsQuota: true,
    CPUShares: true, CPUSet: true, PidsLimit: true, OomKillDisable: v1, IPv4Forwarding: ipForwarding(), BridgeNfIptables: true, BridgeNfIp6tables: true,
    Debug: false, NFd: 0, NGoroutines: 0, SystemTime: new Date().toISOString(), LoggingDriver: 'k8s-file', NEventsListener: 0,
    IndexServerAddress: 'https://index.docker.io/v1/',
    // Berth reads its registries from its own configuration file; plain HTTP is allowed to loopback only by default.
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [], InsecureRegistryCIDRs: ['127.0.0.0/8'],
      IndexConfigs: { 'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true } }, Mirrors: [],
    },
    HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '', HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
    NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
    ExperimentalBuild: false, LiveRestoreEnabled: true, Isolation: '', InitBinary: '', ProductLicense: '',
    ContainerdCommit: { ID: '', Expected: '' }, RuncCommit: { ID: '', Expected: '' }, InitCommit: { ID: '', Expected: '' },
    // Berth has no swarm mode.
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
  });
}

function ipForwarding(): boolean {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** Filters Berth's event log applies (engine.system.events); others are refused rather than ignored. */

/** RFC 3339 with up to nine fraction digits → nanoseconds since the epoch. */
function nanos(time: string): bigint {
  const frac = /\.(\d+)/.exec(time)?.[1] ?? '';
  return BigInt(unixSeconds(time)) * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9));
}

/** An event in Docker's events.Message shape, with the deprecated status/id/from that old clients read. */
export function dockerEvent(ev: EngineEvent): Record<string, unknown> {
  const ns = nanos(ev.time);
  return {
    ...(ev.type === 'container' || ev.type === 'image' ? { status: ev.action, id: ev.id } : {}),
    ...(ev.type === 'container' && ev.attributes.image !== undefined ? { from: ev.attributes.image } : {}),
    Type: ev.type,
    Action: ev.action,
    Actor: { ID: ev.id, Attributes: ev.attributes },
    scope: 'local',
    time: Number(ns / 1_000_000_000n),
    timeNano: Number(ns),
  };
}

async function events(call: Call): Promise<void> {
  const filters = filtersParam(call.query);
  // Checked before the headers: an unknown key is a 400, not an error line in a stream already open.
  eventFilter(filters);
  const until = call.query.get('until') || undefined;
  // Without since, Docker sends only what happens from now on, not the whole log.
  const since = call.query.get('since') || (until ? undefined : String(Date.now() / 1000));
  const stream = call.engine.system.events({ ...(since && { since }), ...(until && { until }), filters, signal: call.signal });
  // Checked before the headers (sent at once, as dockerd does, so clients know the stream is open).
  parseTime(since, 'since');
  parseTime(until, 'until');
  const out = jsonLines(call.res!);
  try {
    for await (const ev of stream) out.write(dockerEvent(ev));
  } catch (err) {
    if (!call.signal.aborted) out.fail(err);
  }
  out.end();
}

async function systemDf(call: Call): Promise<void> {
  const { containers, images, volumes } = call.engine;
  const [ctrs, imgs, vols] = await Promise.all([containers.list({ all: true, size: true }), images.list({ all: true }), volumes.list()]);
  const byImage = groupByImage(imgs);
  const uses = (id: string) => ctrs.filter((c) => c.imageId === id).length;
  const imageRows = [...byImage.values()].map((i) => ({
    Id: i.id, ParentId: '', RepoTags: i.repoTags.map(familiar), RepoDigests: i.repoDigests.map(familiar), Created: unixSeconds(i.created), Size: i.size,
    // 0, not -1 ("not computed"): the docker CLI counts an image as in use only when its SharedSize is known.
    VirtualSize: i.size, SharedSize: 0, Labels: null, Containers: uses(i.id),
  }));
  sendJson(call.res!, 200, {
    // Layers are shared between images: their sum overstates the disk used, so the images' own sizes are summed once each.
    LayersSize: imageRows.reduce((n, i) => n + i.Size, 0),
    Images: imageRows,
    Containers: ctrs.map((c) => ({
      Id: c.id, Names: c.names.map((n) => `/${n}`), Image: c.image, ImageID: c.imageId, Command: c.command, Created: unixSeconds(c.created),
      State: c.state, Status: c.status, SizeRw: c.sizeRw ?? 0, SizeRootFs: c.sizeRootFs ?? 0, Labels: c.labels, Mounts: [],
      Ports: [], HostConfig: { NetworkMode: 'default' }, NetworkSettings: { Networks: {} },
    })),
    Volumes: vols.map((v) => ({
      Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt, Labels: v.Labels, Options: v.Options, Scope: v.Scope,
      // Berth does not measure volumes: -1 is Docker's "not computed".
      UsageData: { Size: -1, RefCount: v.UsedBy.length },
    })),
    BuildCache: [],
  });
}

async function auth(call: Call): Promise<void> {
  const body = await readJson(call);
  for (const k of ['username', 'password', 'serveraddress', 'email', 'identitytoken', 'registrytoken', 'auth']) {
    if (body[k] !== undefined && typeof body[k] !== 'string') throw new ApiError(400, `${k} must be a string`);
  }
  if (body.identitytoken || body.registrytoken) throw new ApiError(400, 'a login by identity or registry token is not supported yet; give username and password');
  let { username = '', password = '' } = body as Record<string, string>;
  // `auth` is the base64 of user:password that config.json keeps; some clients send it instead.
  if (!username && !password && typeof body.auth === 'string' && body.auth) {
    const plain = Buffer.from(body.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new ApiError(400, 'auth must be the base64 of username:password');
    username = plain.slice(0, colon);
    password = plain.slice(colon + 1);
  }
  const server = (body.serveraddress as string | undefined) || undefined;
  // The client keeps the login it checked here (docker's config.json); Berth keeps nothing.
  await call.engine.registries.login(server, { username, password }, { store: false, signal: call.signal });
  sendJson(call.res!, 200, { Status: 'Login Succeeded', IdentityToken: '' });
}

export function registerSystemInfo(r: Router): void {
  r.add('GET', '/info', info);
  r.add('GET', '/events', events);
  r.add('GET', '/system/df', systemDf);
  r.add('POST', '/auth', auth);
}
