import type { ArchiveFormat, HistoryEntry } from '../../api/types.js';
import { InvalidArgumentError } from '../../errors.js';
import { type Command, defineCommand, FILTER_OPTION, FORCE_OPTION, FORMAT_OPTION, interruptible, NO_TRUNC_OPTION, PRUNE_FILTER_OPTION } from '../command.js';
import { ellipsis, humanSize, renderRows, timeAgo, truncId } from '../format.js';
import { confirm, forEachRef } from '../report.js';
import { IMAGE_HEADERS, IMAGE_TABLE, IMAGE_TABLE_DIGESTS, imageRows } from '../views.js';
import { printInspect } from './containers.js';

const ls = defineCommand({
  name: 'ls', group: 'image', aliases: ['list'], shortcuts: ['images'],
  usage: '[OPTIONS] [REPOSITORY[:TAG]]', summary: 'List images',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Show all images (default hides intermediate images)' },
    { name: 'digests', type: 'bool', help: 'Show digests' },
    FILTER_OPTION, FORMAT_OPTION, NO_TRUNC_OPTION,
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
  ],
  maxArgs: 1,
  async action(ctx, o, [reference]) {
    const filters = reference ? [...o.filter, `reference=${reference}`] : o.filter;
    const images = await (await ctx.engine()).images.list({ all: o.all, filters });
    const now = Date.now();
    const rows = images.flatMap((img) => imageRows(img, { trunc: !o.noTrunc, now }));
    if (o.quiet) return ctx.print(...new Set(rows.map((r) => r.ID)));
    ctx.print(...renderRows(rows, o.format, o.digests ? IMAGE_TABLE_DIGESTS : IMAGE_TABLE, IMAGE_HEADERS));
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'image',
  usage: '[OPTIONS] IMAGE [IMAGE...]', summary: 'Display detailed information on one or more images',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  minArgs: 1,
  async action(ctx, o, refs) {
    const images = (await ctx.engine()).images;
    return printInspect(ctx, refs, (ref) => images.inspect(ref), o.format);
  },
});

const tag = defineCommand({
  name: 'tag', group: 'image', shortcuts: ['tag'],
  usage: 'SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]', summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  options: [], minArgs: 2, maxArgs: 2,
  async action(ctx, _o, [source, target]) {
    await (await ctx.engine()).images.tag(source!, target!);
  },
});

const rm = defineCommand({
  name: 'rm', group: 'image', aliases: ['remove'], shortcuts: ['rmi'],
  usage: '[OPTIONS] IMAGE [IMAGE...]', summary: 'Remove one or more images',
  options: [
    { name: 'force', short: 'f', type: 'bool', help: 'Force removal of the image' },
    { name: 'no-prune', type: 'bool', help: 'Do not delete untagged parents' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const images = (await ctx.engine()).images;
    return forEachRef(ctx, refs, async (ref) => {
      const removed = await images.remove(ref, { force: o.force, noPrune: o.noPrune });
      return removed.map((r) => (r.untagged ? `Untagged: ${r.untagged}` : `Deleted: ${r.deleted}`)).join('\n');
    });
  },
});

const prune = defineCommand({
  name: 'prune', group: 'image',
  usage: '[OPTIONS]', summary: 'Remove unused images',
  options: [
    { name: 'all', short: 'a', type: 'bool', help: 'Remove all unused images, not just dangling ones' },
    FORCE_OPTION, PRUNE_FILTER_OPTION,
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const warning = o.all ? 'This will remove all images without at least one container associated to them.' : 'This will remove all dangling images.';
    if (!o.force && !(await confirm(ctx, warning))) return 0;
    const { deleted, spaceReclaimed } = await (await ctx.engine()).images.prune({ all: o.all, filters: o.filter });
    if (deleted.length) ctx.print('Deleted Images:', ...deleted.map((d) => `deleted: ${d}`), '');
    ctx.print(`Total reclaimed space: ${humanSize(spaceReclaimed)}`);
  },
});

/** docker history rows: IMAGE CREATED CREATED BY SIZE COMMENT. */
export function historyRow(h: HistoryEntry, opts: { trunc: boolean; human: boolean; now?: number }): string[] {
  const id = h.id === '<missing>' || !opts.trunc ? h.id : truncId(h.id);
  const createdBy = opts.trunc ? ellipsis(h.createdBy, 45) : h.createdBy;
  return [
    id,
    opts.human ? timeAgo(h.created, opts.now) : h.created,
    createdBy,
    opts.human ? humanSize(h.size) : String(h.size),
    h.comment,
  ];
}

const history = defineCommand({
  name: 'history', group: 'image', shortcuts: ['history'],
  usage: '[OPTIONS] IMAGE', summary: 'Show the history of an image',
  options: [
    { name: 'human', short: 'H', type: 'bool', default: true, help: 'Print sizes and dates in human readable format (default true)' },
    NO_TRUNC_OPTION,
    { name: 'quiet', short: 'q', type: 'bool', help: 'Only show image IDs' },
    FORMAT_OPTION,
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    const entries = await (await ctx.engine()).images.history(ref!);
    const human = o.human;
    const now = Date.now();
    if (o.quiet) return ctx.print(...entries.map((h) => historyRow(h, { trunc: !o.noTrunc, human, now })[0]!));
    const rows = entries.map((h) => {
      const [ID, CreatedSince, CreatedBy, Size, Comment] = historyRow(h, { trunc: !o.noTrunc, human, now });
      return { ID: ID!, CreatedSince: CreatedSince!, CreatedAt: h.created, CreatedBy: CreatedBy!, Size: Size!, Comment: Comment! };
    });
    ctx.print(...renderRows(rows, o.format, 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}', {
      ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT',
    }));
  },
});

const load = defineCommand({
  name: 'load', group: 'image', shortcuts: ['load'],
  usage: '[OPTIONS]', summary: 'Load an image from a tar archive or STDIN',
  options: [
    { name: 'input', short: 'i', type: 'string', help: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the load output' },
  ],
  maxArgs: 0,
  async action(ctx, o) {
    if (o.input === undefined && ctx.stdin.isTTY) {
      throw new InvalidArgumentError('input', 'requested load from stdin, but stdin is a terminal', 'use -i FILE, or redirect a tar archive to stdin');
    }
    const engine = await ctx.engine();
    // Ctrl-C or a kill stops the load, which removes what it stored.
    const out = await interruptible(ctx, (signal) => engine.images.load(o.input ?? ctx.stdin, { signal }));
    if ('exitCode' in out) return out.exitCode;
    const { loaded } = out.value;
    if (!o.quiet) ctx.print(...loaded.map((ref) => (ref.startsWith('sha256:') ? `Loaded image ID: ${ref}` : `Loaded image: ${ref}`)));
  },
});

const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['docker-archive', 'oci-archive', 'oci-dir'];

const save = defineCommand({
  name: 'save', group: 'image', shortcuts: ['save'],
  usage: '[OPTIONS] IMAGE [IMAGE...]', summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  options: [
    { name: 'output', short: 'o', type: 'string', help: 'Write to a file, instead of STDOUT' },
    { name: 'format', type: 'string', help: 'docker-archive (default), oci-archive or oci-dir' },
  ],
  minArgs: 1,
  async action(ctx, o, refs) {
    const format = o.format as ArchiveFormat | undefined;
    if (format !== undefined && !ARCHIVE_FORMATS.includes(format)) {
      throw new InvalidArgumentError('--format', `"${o.format}" is not an archive format`, `use one of ${ARCHIVE_FORMATS.join(', ')}`);
    }
    if (o.output === undefined && (ctx.stdout.isTTY || format === 'oci-dir')) {
      throw new InvalidArgumentError('--output', 'cowardly refusing to save to a terminal', 'use the -o flag or redirect');
    }
    await (await ctx.engine()).images.save(refs, o.output ?? ctx.stdout, { format });
  },
});

const importCmd = defineCommand({
  name: 'import', group: 'image', shortcuts: ['import'],
  usage: '[OPTIONS] file|- [REPOSITORY[:TAG]]', summary: 'Import the contents from a tarball to create a filesystem image',
  options: [
    { name: 'change', short: 'c', type: 'list', help: 'Apply Dockerfile instruction to the created image' },
    { name: 'message', short: 'm', type: 'string', help: 'Set commit message for imported image' },
  ],
  minArgs: 1, maxArgs: 2,
  async action(ctx, o, [file, reference]) {
    const id = await (await ctx.engine()).images.import(file === '-' ? ctx.stdin : file!, { reference, changes: o.change, message: o.message });
    ctx.print(id);
  },
});

const mount = defineCommand({
  name: 'mount', group: 'image',
  usage: 'IMAGE', summary: 'Mount an image read-only and print the mount point',
  options: [], minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [ref]) {
    ctx.print(await (await ctx.engine()).images.mount(ref!));
  },
});

const unmount = defineCommand({
  name: 'unmount', group: 'image', aliases: ['umount'],
  usage: 'IMAGE [IMAGE...]', summary: 'Unmount images',
  options: [], minArgs: 1,
  async action(ctx, _o, refs) {
    const images = (await ctx.engine()).images;
    return forEachRef(ctx, refs, (ref) => images.unmount(ref));
  },
});

const defaultImage = defineCommand({
  name: 'default', group: 'image', hidden: true,
  usage: '[OPTIONS]', summary: "Build the default busybox image from the host's busybox-static and print its ID",
  options: [{ name: 'rebuild', type: 'bool', help: 'Build it again even when it exists' }],
  maxArgs: 0,
  async action(ctx, o) {
    ctx.print(await (await ctx.engine()).images.ensureDefault({ rebuild: o.rebuild }));
  },
});

export const imageCommands: Command[] = [ls, inspect, tag, rm, prune, history, load, save, importCmd, mount, unmount, defaultImage];
