/** `berth machine ...`: docker-machine's commands (generic driver) over src/machine. */
import { type Command, defineCommand, FORMAT_OPTION, QUIET_OPTION } from '../command.js';
import { renderRows } from '../format.js';
import { confirm, forEachRef } from '../report.js';
import { printInspect } from './containers.js';

/** Loaded only by these commands. */
const machines = async () => new (await import('../../machine/index.js')).Machines();

const create = defineCommand({
  name: 'create', group: 'machine',
  usage: '[OPTIONS] NAME',
  summary: 'Provision a Debian 12 host over ssh with this Berth (built tree, scripts/setup.sh) and register a context NAME for it',
  options: [
    { name: 'driver', short: 'd', type: 'string', help: 'Driver to create the machine with (only "generic": a host you have, reached over ssh)' },
    { name: 'ssh-host', type: 'string', help: 'generic: the host\'s name or address (required)' },
    { name: 'ssh-user', type: 'string', help: 'generic: the ssh user (default root)' },
    { name: 'ssh-key', type: 'string', help: 'generic: the private key file to log in with (default: your ssh agent and keys)' },
    { name: 'ssh-port', type: 'number', help: 'generic: the ssh port (default 22)' },
    { name: 'install-prefix', type: 'string', help: 'Where Berth goes on the host: PREFIX/lib/berth, linked as PREFIX/bin/berth (default /usr/local)' },
    { name: 'berth-root', type: 'string', help: 'The root of the host\'s Berth (default: its own default, /var/lib/berth)' },
    { name: 'ssh-accept-host-key', type: 'bool', help: 'Trust the host\'s key if known_hosts has none, and add it there (a changed key is still refused)' },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [name]) {
    const m = await machines();
    await m.create({
      name: name!, driver: o.driver ?? 'generic', sshHost: o.sshHost ?? '', sshUser: o.sshUser, sshPort: o.sshPort, sshKey: o.sshKey,
      prefix: o.installPrefix, root: o.berthRoot, acceptHostKey: o.sshAcceptHostKey,
    }, (line) => ctx.stderr.write(line + '\n'));
    ctx.print(name!);
  },
});

const LS_TABLE = 'table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.BerthVersion}}\t{{.Error}}';
const LS_HEADERS = { Name: 'NAME', Active: 'ACTIVE', DriverName: 'DRIVER', State: 'STATE', URL: 'URL', BerthVersion: 'BERTH', Error: 'ERRORS' };

const ls = defineCommand({
  name: 'ls', group: 'machine', aliases: ['list'],
  usage: '[OPTIONS]', summary: 'List machines: NAME, ACTIVE (*), DRIVER, STATE (Running, Stopped: unreachable, Error), URL, BERTH version',
  options: [
    { ...FORMAT_OPTION, short: 'f', help: "Pretty-print machines using a Go template ({{.Name}} {{.Active}} {{.DriverName}} {{.State}} {{.URL}} {{.BerthVersion}} {{.Error}}), 'table ...' or 'json'" },
    { ...QUIET_OPTION, help: 'Only display machine names' },
    { name: 'timeout', short: 't', type: 'number', help: 'Seconds to wait for each machine to answer (default 10)' },
  ],
  maxArgs: 0,
  async action(ctx, o) {
    const m = await machines();
    if (o.quiet) return ctx.print(...(await m.store.list()).map((r) => r.Name));
    const rows = await m.list({ timeoutS: o.timeout });
    ctx.print(...renderRows(rows, o.format, LS_TABLE, LS_HEADERS));
  },
});

const ssh = defineCommand({
  name: 'ssh', group: 'machine',
  usage: 'NAME [COMMAND...]', summary: 'Log into a machine with ssh, or run a command there (its exit code is this command\'s)',
  options: [], commandAfterArgs: true,
  minArgs: 1,
  async action(ctx, _o, [name, ...command]) {
    return (await machines()).ssh(name!, command, { stdin: ctx.stdin, stdout: ctx.stdout, stderr: ctx.stderr });
  },
});

const env = defineCommand({
  name: 'env', group: 'machine',
  usage: '[OPTIONS] NAME', summary: 'Print the shell lines that point berth at a machine: eval $(berth machine env NAME)',
  options: [{ name: 'unset', short: 'u', type: 'bool', help: 'Print the lines that undo them instead' }],
  minArgs: 0, maxArgs: 1,
  async action(ctx, o, [name]) {
    if (!o.unset && !name) {
      const { InvalidArgumentError } = await import('../../errors.js');
      throw new InvalidArgumentError('NAME', 'is required', 'give the machine: berth machine env NAME (or --unset)');
    }
    ctx.print(...(await (await machines()).envLines(name ?? '', { unset: o.unset })));
  },
});

const scp = defineCommand({
  name: 'scp', group: 'machine',
  usage: '[OPTIONS] [MACHINE:]SRC [MACHINE:]DEST', summary: 'Copy files between this host and a machine, or between two machines',
  options: [{ name: 'recursive', short: 'r', type: 'bool', help: 'Copy folders recursively' }],
  minArgs: 2, maxArgs: 2,
  async action(_ctx, o, [from, to]) {
    await (await machines()).scp(from!, to!, { recursive: o.recursive });
  },
});

const upgrade = defineCommand({
  name: 'upgrade', group: 'machine',
  usage: 'NAME [NAME...]', summary: 'Copy this Berth to machines again and re-run their set-up',
  options: [],
  minArgs: 1,
  async action(ctx, _o, names) {
    const m = await machines();
    return forEachRef(ctx, names, async (n) => { await m.upgrade(n, (line) => ctx.stderr.write(line + '\n')); });
  },
});

const rm = defineCommand({
  name: 'rm', group: 'machine', aliases: ['remove'],
  usage: '[OPTIONS] NAME [NAME...]', summary: 'Remove machines: their records and contexts (the host\'s install only with --purge)',
  options: [
    { name: 'force', short: 'f', type: 'bool', help: 'Remove the local record and context even if --purge cannot reach the host' },
    { name: 'yes', short: 'y', type: 'bool', help: 'Assume yes to the confirmation' },
    { name: 'purge', type: 'bool', help: 'Also remove Berth from the host (PREFIX/lib/berth and the link PREFIX/bin/berth; its root\'s data stays)' },
  ],
  minArgs: 1,
  async action(ctx, o, names) {
    if (!o.yes && !(await confirm(ctx, `This will remove the machine${names.length > 1 ? 's' : ''} ${names.join(', ')}${o.purge ? ' and Berth on the host' : ''}.`))) return 0;
    const m = await machines();
    return forEachRef(ctx, names, (n) => m.remove(n, { purge: o.purge, force: o.force }, (line) => ctx.stderr.write(line + '\n')));
  },
});

const inspect = defineCommand({
  name: 'inspect', group: 'machine',
  usage: '[OPTIONS] NAME [NAME...]', summary: 'Display the records of one or more machines',
  options: [{ name: 'format', short: 'f', type: 'string', help: 'Format output using a Go template' }],
  minArgs: 1,
  async action(ctx, o, names) {
    const m = await machines();
    return printInspect(ctx, names, (n) => m.inspect(n), o.format);
  },
});

export const machineCommands: readonly Command[] = [create, ls, ssh, env, scp, upgrade, rm, inspect];
