import { type Command, defineCommand, FILTER_OPTION, FORCE_OPTION, FORMAT_OPTION, NO_TRUNC_OPTION, PRUNE_FILTER_OPTION } from '../command.js';
import { renderRows } from '../format.js';
import { UsageError } from '../parser.js';
import { confirm, forEachRef } from '../report.js';
import { NETWORK_HEADERS, NETWORK_TABLE, networkInspectView, networkRow } from '../views.js';
import { printInspect } from './containers.js';

const create = defineCommand({
  name: 'create', group: 'network',
  usage: '[OPTIONS] NETWORK', summary: 'Create a network',
  options: [
    { name: 'driver', short: 'd', type: 'string', help: 'Driver to manage the Network (default "bridge")' },
    { name: 'subnet', type: 'list', help: 'Subnet in CIDR format that represents a network segment' },
    { name: 'gateway', type: 'list', help: 'IPv4 or IPv6 Gateway for the master subnet' },
    { name: 'ip-range', type: 'list', help: 'Allocate container ip from a sub-range' },
    { name: 'ipv6', type: 'bool', help: 'Enable or disable IPv6 networking' },
    { name: 'internal', type: 'bool', help: 'Restrict external access to the network' },
    { name: 'opt', short: 'o', type: 'map', help: 'Set driver specific options' },
    { name: 'label', type: 'map', help: 'Set metadata on a network' },
    { name: 'allow-host-overlap', type: 'bool', help: 'Accept a --subnet that overlaps a route or address of the host' },
    { name: 'attachable', type: 'bool', help: 'Enable manual container attachment (global-scope networks: overlay, flannel)' },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [name]) {
    const { id } = await (await ctx.engine()).networks.create({
      name: name!, driver: o.driver, subnets: o.subnet, gateways: o.gateway, ipRanges: o.ipRange,
      ipv6: o.ipv6, internal: o.internal, options: o.opt, labels: o.label, allowHostOverlap: o.allowHostOverlap,
      attachable: o.attachable,
    });
    ctx.print(id);
  },
});

const ls = defineCommand({
  name: 'ls', group: 'network', aliases: ['list'],
  usage: '[OPTIONS]', summary: 'List networks',
  options: [FILTER_OPTION, FORMAT_OPTION, NO_TRUNC_OPTION, { name: 'quiet', short: 'q', type: 'bool', help: 'Only display network IDs' }],
  maxArgs: 0,
  async action(ctx, o) {
    const rows = (await (await ctx.engine()).networks.list({ filters: o.filter })).map((n) => networkRow(n, { trunc: !o.noTrunc }));
    if (o.quiet) return ctx.print(...rows.map((r) => r.ID));
    ctx.print(...renderRows(rows, o.format, NETWORK_TABLE, NETWORK_HEADERS));
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'network',
  usage: '[OPTIONS] NETWORK [NETWORK...]', summary: 'Display detailed information on one or more networks',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const networks = (await ctx.engine()).networks;
    return printInspect(ctx, refs, async (ref) => networkInspectView(await networks.inspect(ref)), o.format);
  },
});

const rm = defineCommand({
  name: 'rm', group: 'network', aliases: ['remove'],
  usage: 'NETWORK [NETWORK...]', summary: 'Remove one or more networks',
  options: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not error if the network does not exist', hidden: true }],
  minArgs: 1,
  async action(ctx, _o, refs) {
    const networks = (await ctx.engine()).networks;
    return forEachRef(ctx, refs, (ref) => networks.remove(ref));
  },
});

const prune = defineCommand({
  name: 'prune', group: 'network',
  usage: '[OPTIONS]', summary: 'Remove all unused networks',
  options: [FORCE_OPTION, PRUNE_FILTER_OPTION], maxArgs: 0,
  async action(ctx, o) {
    if (!o.force && !(await confirm(ctx, 'This will remove all custom networks not used by at least one container.'))) return 0;
    const { deleted } = await (await ctx.engine()).networks.prune({ filters: o.filter });
    if (deleted.length) ctx.print('Deleted Networks:', ...deleted);
  },
});

const connect = defineCommand({
  name: 'connect', group: 'network',
  usage: '[OPTIONS] NETWORK CONTAINER', summary: 'Connect a container to a network',
  options: [
    { name: 'ip', type: 'string', help: 'IPv4 address (e.g., "172.30.100.104")' },
    { name: 'ip6', type: 'string', help: 'IPv6 address (e.g., "2001:db8::33")' },
    { name: 'alias', type: 'list', help: 'Add network-scoped alias for the container' },
  ],
  minArgs: 2, maxArgs: 2,
  async action(ctx, o, [network, container]) {
    await (await ctx.engine()).networks.connect(network!, container!, { ip: o.ip, ip6: o.ip6, aliases: o.alias.length ? o.alias : undefined });
  },
});

const disconnect = defineCommand({
  name: 'disconnect', group: 'network',
  usage: '[OPTIONS] NETWORK CONTAINER', summary: 'Disconnect a container from a network',
  options: [{ name: 'force', short: 'f', type: 'bool', help: 'Force the container to disconnect from a network' }],
  minArgs: 2, maxArgs: 2,
  async action(ctx, o, [network, container]) {
    await (await ctx.engine()).networks.disconnect(network!, container!, { force: o.force });
  },
});

const reload = defineCommand({
  name: 'reload', group: 'network',
  usage: '[OPTIONS] [CONTAINER...]', summary: 'Put back the firewall rules of containers and networks (after a firewall flush)',
  options: [{ name: 'all', short: 'a', type: 'bool', help: 'Reload every running container' }],
  async action(ctx, o, refs) {
    if (!o.all && !refs.length) throw new UsageError('"berth network reload" requires --all or at least 1 container', 1);
    const { reloaded } = await (await ctx.engine()).networks.reload(o.all ? { all: true } : { containers: refs });
    ctx.print(...reloaded);
  },
});

export const networkCommands: Command[] = [create, ls, inspect, rm, prune, connect, disconnect, reload];
