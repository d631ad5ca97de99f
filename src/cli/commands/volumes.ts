import { type Command, defineCommand, FILTER_OPTION, FORCE_OPTION, FORMAT_OPTION, PRUNE_FILTER_OPTION } from '../command.js';
import { renderRows } from '../format.js';
import { confirm, forEachRef } from '../report.js';
import { VOLUME_HEADERS, VOLUME_TABLE, volumeInspectView, volumeRow } from '../views.js';
import { archiveOutput, printInspect } from './containers.js';

const create = defineCommand({
  name: 'create', group: 'volume',
  usage: '[OPTIONS] [VOLUME]', summary: 'Create a volume',
  options: [
    { name: 'driver', short: 'd', type: 'string', help: 'Specify volume driver name (default "local")' },
    { name: 'opt', short: 'o', type: 'map', help: 'Set driver specific options (local: type=tmpfs|none|..., device=..., o=...)' },
    { name: 'label', type: 'map', help: 'Set metadata for a volume' },
    { name: 'name', type: 'string', help: 'Specify volume name', hidden: true },
  ],
  maxArgs: 1,
  async action(ctx, o, [name]) {
    const vol = await (await ctx.engine()).volumes.create({ name: name ?? o.name, driver: o.driver, options: o.opt, labels: o.label });
    ctx.print(vol.Name);
  },
});

const ls = defineCommand({
  name: 'ls', group: 'volume', aliases: ['list'],
  usage: '[OPTIONS]', summary: 'List volumes',
  options: [FILTER_OPTION, FORMAT_OPTION, { name: 'quiet', short: 'q', type: 'bool', help: 'Only display volume names' }],
  maxArgs: 0,
  async action(ctx, o) {
    const rows = (await (await ctx.engine()).volumes.list({ filters: o.filter })).map(volumeRow);
    if (o.quiet) return ctx.print(...rows.map((r) => r.Name));
    ctx.print(...renderRows(rows, o.format, VOLUME_TABLE, VOLUME_HEADERS));
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'volume',
  usage: '[OPTIONS] VOLUME [VOLUME...]', summary: 'Display detailed information on one or more volumes',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const volumes = (await ctx.engine()).volumes;
    return printInspect(ctx, refs, async (ref) => volumeInspectView(await volumes.inspect(ref)), o.format);
  },
});

const rm = defineCommand({
  name: 'rm', group: 'volume', aliases: ['remove'],
  usage: '[OPTIONS] VOLUME [VOLUME...]', summary: 'Remove one or more volumes (refused while a container uses one)',
  options: [{ name: 'force', short: 'f', type: 'bool', help: 'Do not error if the volume does not exist' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const volumes = (await ctx.engine()).volumes;
    return forEachRef(ctx, refs, (ref) => volumes.remove(ref, { force: o.force }));
  },
});

const exportCmd = defineCommand({
  name: 'export', group: 'volume',
  usage: '[OPTIONS] VOLUME', summary: 'Export the content of a volume as a tar archive (to STDOUT by default)',
  options: [{ name: 'output', short: 'o', type: 'string', help: 'Write to a file, instead of STDOUT' }],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [name]) {
    await (await ctx.engine()).volumes.export(name!, archiveOutput(ctx, o.output));
  },
});

const importCmd = defineCommand({
  name: 'import', group: 'volume',
  usage: 'VOLUME file|-', summary: 'Fill an empty volume from a tar archive (all or nothing)',
  options: [], minArgs: 2, maxArgs: 2,
  async action(ctx, _o, [name, file]) {
    await (await ctx.engine()).volumes.import(name!, file === '-' ? ctx.stdin : file!);
  },
});

const prune = defineCommand({
  name: 'prune', group: 'volume',
  usage: '[OPTIONS]', summary: 'Remove unused anonymous volumes (all unused ones with -a)',
  options: [FORCE_OPTION, PRUNE_FILTER_OPTION, { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused volumes, not just anonymous ones' }],
  maxArgs: 0,
  async action(ctx, o) {
    const what = o.all ? 'all local volumes not used by at least one container' : 'all anonymous local volumes not used by at least one container';
    if (!o.force && !(await confirm(ctx, `This will remove ${what}.`))) return 0;
    const { deleted } = await (await ctx.engine()).volumes.prune({ all: o.all, filters: o.filter });
    if (deleted.length) ctx.print('Deleted Volumes:', ...deleted);
  },
});

export const volumeCommands: Command[] = [create, ls, inspect, rm, prune, exportCmd, importCmd];
