/**
 * The networks endpoints (`/networks/...`): Docker's request and answer shapes over `engine.networks`.
 * Docker's network objects are the CLI's `network inspect` view (cli/views.ts) plus the swarm fields a
 * local daemon answers with their defaults, so that compose's comparison of a network with its project
 * file (Driver, Options, IPAM, Internal, Attachable, EnableIPv6, Labels) finds what it expects.
 */
import { AlreadyExistsError, BadStateError, NotFoundError } from '../errors.js';
import { networkInspectView } from '../api/networks.js';
import type { NetworkCreateRequest, NetworkSummary } from '../types.js';
import { ApiError } from './errors.js';
import { boolParam, filtersParam, readJson, sendJson, sendStatus } from './http.js';
import {
  boolField, objectField, refuseOthers, stringField, stringListField, stringMapField,
} from './networks-body.js';
import type { Router } from './router.js';
import { compareVersions } from './versions.js';

const PREDEFINED = ['bridge', 'host', 'none'];
const BRIDGE_NAME = 'com.docker.network.bridge.name';

/** A network as Docker's API gives it; `detailed: false` leaves Containers empty, as `GET /networks` does since 1.28. */
export function networkObject(n: NetworkSummary, opts: { detailed: boolean }): Record<string, unknown> {
  const v = networkInspectView(n);
  return {
    Name: v.Name, Id: v.Id, Created: v.Created, Scope: v.Scope, Driver: v.Driver, EnableIPv6: v.EnableIPv6, IPAM: v.IPAM,
    Internal: v.Internal, Attachable: v.Attachable, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: opts.detailed ? v.Containers : {}, Options: givenOptions(n), Labels: v.Labels,
    ...(opts.detailed && v.Warnings ? { Warnings: v.Warnings } : {}),
  };
}

/**
 * The options the network was created with. Berth's views add the Linux bridge Berth named itself
 * (`berth` + 10 hex digits of the id); Docker shows only what was given, and compose compares Options
 * key by key with its file: an extra key makes it refuse the project ("needs to be recreated").
 */
function givenOptions(n: NetworkSummary): Record<string, string> {
  if (n.driver !== 'bridge' || PREDEFINED.includes(n.name) || n.options[BRIDGE_NAME] !== `berth${n.id.slice(0, 10)}`) return n.options;
  const { [BRIDGE_NAME]: _, ...given } = n.options;
  return given;
}

export function registerNetworks(r: Router): void {
  r.add('GET', '/networks', async (call) => {
    const filters = filtersParam(call.query);
    // scope and dangling are Docker filters the engine's list does not take: every Berth network is local,
    // and a dangling one is a user network no container is on.
    const scopes = values(filters, 'scope');
    const dangling = values(filters, 'dangling').map((v) => {
      if (!/^(true|false|1|0)$/i.test(v)) throw new ApiError(400, `invalid filter 'dangling=${v}'`);
      return /^(true|1)$/i.test(v);
    });
    const rest = filters.filter((f) => !/^(scope|dangling)=/.test(f));
    let nets = await call.engine.networks.list({ filters: rest });
    if (scopes.length && !scopes.includes('local')) nets = [];
    for (const d of dangling) nets = nets.filter((n) => isDangling(n) === d);
    const detailed = compareVersions(call.version, '1.28') < 0;
    sendJson(call.res!, 200, nets.map((n) => networkObject(n, { detailed })));
  });

  r.add('GET', '/networks/{id}', async (call) => {
    boolParam(call.query, 'verbose'); // swarm services' tasks: a local network has none to add
    const scope = call.query.get('scope');
    if (scope && !['local', 'swarm', 'global'].includes(scope)) throw new ApiError(400, `invalid scope "${scope}": expected local, swarm or global`);
    if (scope && scope !== 'local') throw new NotFoundError('network', call.params.id!);
    sendJson(call.res!, 200, networkObject(await call.engine.networks.inspect(call.params.id!), { detailed: true }));
  });

  r.add('POST', '/networks/create', async (call) => {
    const req = createRequest(await readJson(call));
    try {
      const { id } = await call.engine.networks.create(req);
      sendJson(call.res!, 201, { Id: id, Warning: '' });
    } catch (err) {
      // compose and the CLI show Docker's sentence; Berth's own names the same thing.
      if (err instanceof AlreadyExistsError) throw new ApiError(409, `network with name ${req.name} already exists`);
      throw err;
    }
  });

  r.add('DELETE', '/networks/{id}', async (call) => {
    const ref = call.params.id!;
    try {
      await call.engine.networks.remove(ref);
    } catch (err) {
      if (!(err instanceof BadStateError)) throw err;
      // Docker answers 403 for both refusals (libnetwork's Forbidden class), in these words.
      const net = await call.engine.networks.inspect(ref);
      if (PREDEFINED.includes(net.name)) throw new ApiError(403, `${net.name} is a pre-defined network and cannot be removed`);
      throw new ApiError(403, `error while removing network: network ${net.name} id ${net.id} has active endpoints`);
    }
    sendStatus(call.res!, 204);
  });

  r.add('POST', '/networks/{id}/connect', async (call) => {
    const body = await readJson(call);
    refuseOthers(body, ['Container', 'EndpointConfig']);
    const container = requiredString(body, 'Container');
    const ep = endpointConfig(objectField(body, 'EndpointConfig') ?? {}, 'EndpointConfig.');
    await call.engine.networks.connect(call.params.id!, container, ep);
    sendStatus(call.res!, 200);
  });

  r.add('POST', '/networks/{id}/disconnect', async (call) => {
    const body = await readJson(call);
    refuseOthers(body, ['Container', 'Force']);
    const container = requiredString(body, 'Container');
    await call.engine.networks.disconnect(call.params.id!, container, { force: boolField(body, 'Force') ?? false });
    sendStatus(call.res!, 200);
  });

  r.add('POST', '/networks/prune', async (call) => {
    const { deleted } = await call.engine.networks.prune({ filters: filtersParam(call.query) });
    sendJson(call.res!, 200, { NetworksDeleted: deleted });
  });
}

/** POST /networks/create's body as the engine's request; what Berth cannot do is refused by name. */
export function createRequest(body: Record<string, unknown>): NetworkCreateRequest {
  // CheckDuplicate: Berth always refuses a second network of one name (Docker does too since API 1.44).
  // Attachable lets standalone containers join a swarm network; a local network admits them anyway, so
  // Docker gives it no effect there, and compose sends it true on every network it makes.
  // Ingress, ConfigOnly, ConfigFrom and a swarm Scope are swarm's; refused when set.
  refuseOthers(body, ['Name', 'CheckDuplicate', 'Attachable', 'Driver', 'Scope', 'EnableIPv6', 'IPAM', 'Internal', 'Options', 'Labels']);
  boolField(body, 'CheckDuplicate');
  boolField(body, 'Attachable');
  const name = requiredString(body, 'Name');
  const scope = stringField(body, 'Scope');
  const driver = stringField(body, 'Driver') || undefined;
  // A network's scope follows from its driver: global for overlay (and flannel), local for the rest; swarm is swarm's.
  const global = driver === 'overlay' || driver === 'flannel';
  if (scope && scope !== (global ? 'global' : 'local')) throw new ApiError(400, `Scope "${scope}" is not supported for driver ${driver ?? 'bridge'}: its networks are ${global ? 'global' : 'local'}`);
  const ipam = objectField(body, 'IPAM');
  const req: NetworkCreateRequest = {
    name,
    driver,
    ipv6: boolField(body, 'EnableIPv6'),
    internal: boolField(body, 'Internal'),
    options: stringMapField(body, 'Options'),
    labels: stringMapField(body, 'Labels'),
  };
  if (ipam) Object.assign(req, ipamRequest(ipam));
  return req;
}

function ipamRequest(ipam: Record<string, unknown>): Pick<NetworkCreateRequest, 'subnets' | 'gateways' | 'ipRanges'> {
  refuseOthers(ipam, ['Driver', 'Config'], 'IPAM.');
  const driver = stringField(ipam, 'Driver', 'IPAM.');
  if (driver && driver !== 'default') throw new ApiError(400, `IPAM.Driver "${driver}" is not supported yet: Berth has only the default IPAM`);
  const config = ipam.Config ?? [];
  if (!Array.isArray(config)) throw new ApiError(400, 'IPAM.Config must be a list');
  const subnets: string[] = [];
  const gateways: string[] = [];
  const ipRanges: string[] = [];
  for (const [i, c] of config.entries()) {
    const where = `IPAM.Config[${i}].`;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new ApiError(400, `IPAM.Config[${i}] must be a JSON object`);
    const entry = c as Record<string, unknown>;
    refuseOthers(entry, ['Subnet', 'Gateway', 'IPRange'], where);
    const subnet = stringField(entry, 'Subnet', where);
    const gateway = stringField(entry, 'Gateway', where);
    const range = stringField(entry, 'IPRange', where);
    if (!subnet) {
      if (gateway || range) throw new ApiError(400, `${where}Subnet is missing: a Gateway or IPRange needs its subnet`);
      continue;
    }
    subnets.push(subnet);
    if (gateway) gateways.push(gateway);
    if (range) ipRanges.push(range);
  }
  return { subnets, gateways, ipRanges };
}

/**
 * EndpointSettings (connect's EndpointConfig, create's NetworkingConfig.EndpointsConfig[net]) as the
 * engine's connect options. NetworkID, EndpointID, Gateway, IPAddress and the other address fields are
 * what inspect reports; Docker ignores them in a request, and so does Berth.
 */
export function endpointConfig(ep: Record<string, unknown>, prefix: string): { ip?: string; ip6?: string; aliases?: string[] } {
  const readOnly = ['NetworkID', 'EndpointID', 'Gateway', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'GlobalIPv6Address', 'GlobalIPv6PrefixLen'];
  refuseOthers(ep, ['IPAMConfig', 'Aliases', ...readOnly], prefix);
  const aliases = stringListField(ep, 'Aliases', prefix);
  const ipam = objectField(ep, 'IPAMConfig', prefix) ?? {};
  refuseOthers(ipam, ['IPv4Address', 'IPv6Address'], `${prefix}IPAMConfig.`);
  const ip = stringField(ipam, 'IPv4Address', `${prefix}IPAMConfig.`);
  const ip6 = stringField(ipam, 'IPv6Address', `${prefix}IPAMConfig.`);
  return { ...(ip ? { ip } : {}), ...(ip6 ? { ip6 } : {}), ...(aliases?.length ? { aliases } : {}) };
}

function requiredString(body: Record<string, unknown>, field: string): string {
  const v = stringField(body, field);
  if (!v) throw new ApiError(400, `${field} is required`);
  return v;
}

function values(filters: readonly string[], key: string): string[] {
  return filters.filter((f) => f.startsWith(`${key}=`)).map((f) => f.slice(key.length + 1));
}

/** Docker's dangling: a network of the user's that no container is on. */
function isDangling(n: NetworkSummary): boolean {
  return !PREDEFINED.includes(n.name) && !Object.keys(n.containers).length;
}
