/** `berth context ...`: Docker's context commands over src/remote/contexts.ts. */
import { type Command, defineCommand, FORMAT_OPTION, FORCE_OPTION, QUIET_OPTION } from '../command.js';
import { renderRows } from '../format.js';
import { forEachRef } from '../report.js';
import { printInspect } from './containers.js';

/** The context store is loaded only by these commands. */
const store = async () => new (await import('../../api/index.js')).ContextStore();

const CONTEXT_TABLE = 'table {{.Name}}\t{{.Description}}\t{{.BerthEndpoint}}';
const CONTEXT_HEADERS = { Name: 'NAME', Description: 'DESCRIPTION', BerthEndpoint: 'BERTH ENDPOINT', Current: 'CURRENT' };

const create = defineCommand({
  name: 'create', group: 'context',
  usage: '[OPTIONS] CONTEXT', summary: 'Create a context',
  options: [
    { name: 'host', type: 'string', help: 'The engine: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]' },
    { name: 'description', type: 'string', help: 'Description of the context' },
    { name: 'tlscacert', type: 'string', help: 'CA of a tcp:// host\'s certificate (copied into the context; TLS is then used)' },
    { name: 'tlscert', type: 'string', help: 'Client certificate for a tcp:// host (copied into the context)' },
    { name: 'tlskey', type: 'string', help: 'Client key for a tcp:// host (copied into the context)' },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [name]) {
    const { InvalidArgumentError } = await import('../../errors.js');
    if (!o.host) throw new InvalidArgumentError('--host', 'is required', 'e.g. berth context create NAME --host ssh://user@host');
    await (await store()).create(name!, { host: o.host, description: o.description, tls: { ca: o.tlscacert, cert: o.tlscert, key: o.tlskey } });
    ctx.print(name!);
    ctx.stderr.write(`Successfully created context "${name}"\n`);
  },
});

const ls = defineCommand({
  name: 'ls', group: 'context', aliases: ['list'],
  usage: '[OPTIONS]', summary: 'List contexts',
  options: [FORMAT_OPTION, QUIET_OPTION],
  maxArgs: 0,
  async action(ctx, o) {
    const list = await (await store()).list();
    if (o.quiet) return ctx.print(...list.map((c) => c.name));
    const rows = list.map((c) => ({
      // As docker: the current one is marked in the table's NAME column only.
      Name: c.current && (o.format === undefined || o.format.startsWith('table')) ? `${c.name} *` : c.name,
      Description: c.description, BerthEndpoint: c.host || 'local', Current: c.current,
    }));
    ctx.print(...renderRows(rows, o.format, CONTEXT_TABLE, CONTEXT_HEADERS as unknown as (typeof rows)[number]));
  },
});

const use = defineCommand({
  name: 'use', group: 'context',
  usage: 'CONTEXT', summary: 'Set the current context',
  options: [],
  minArgs: 1, maxArgs: 1,
  async action(ctx, _o, [name]) {
    await (await store()).use(name!);
    ctx.print(name!);
    ctx.stderr.write(`Current context is now "${name}"\n`);
    if (process.env.BERTH_HOST) ctx.stderr.write('Warning: BERTH_HOST is set and overrides the current context; unset it to use the context\n');
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'context',
  usage: '[OPTIONS] [CONTEXT] [CONTEXT...]', summary: 'Display detailed information on one or more contexts',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  async action(ctx, o, names) {
    const s = await store();
    const which = names.length ? names : [await s.current()];
    return printInspect(ctx, which, (n) => s.inspect(n), o.format);
  },
});

const rm = defineCommand({
  name: 'rm', group: 'context', aliases: ['remove'],
  usage: '[OPTIONS] CONTEXT [CONTEXT...]', summary: 'Remove one or more contexts',
  options: [{ ...FORCE_OPTION, help: 'Force the removal of a context in use' }],
  minArgs: 1,
  async action(ctx, o, names) {
    const s = await store();
    return forEachRef(ctx, names, (n) => s.remove(n, { force: o.force }));
  },
});

const exportContext = defineCommand({
  name: 'export', group: 'context',
  usage: 'CONTEXT [FILE|-]', summary: 'Export a context to a tar archive FILE or a tar stream on STDOUT',
  options: [],
  minArgs: 1, maxArgs: 2,
  async action(ctx, _o, [name, file]) {
    const target = file ?? `${name}.berthcontext`;
    await (await store()).export(name!, target === '-' ? ctx.stdout : target);
    if (target !== '-') ctx.stderr.write(`Written file "${target}"\n`);
  },
});

const importContext = defineCommand({
  name: 'import', group: 'context',
  usage: 'CONTEXT FILE|-', summary: 'Import a context from a tar file (as "context export" writes, Berth\'s or Docker\'s)',
  options: [],
  minArgs: 2, maxArgs: 2,
  async action(ctx, _o, [name, file]) {
    await (await store()).import(name!, file === '-' ? ctx.stdin : file!);
    ctx.print(name!);
    ctx.stderr.write(`Successfully imported context "${name}"\n`);
  },
});

export const contextCommands: readonly Command[] = [create, ls, use, inspect, rm, exportContext, importContext];
