import type { Command, Group } from './command.js';
import { COMMANDS, commandNames, GROUPS } from './commands/index.js';
import type { OptionSpec } from './parser.js';

const TYPE_WORDS: Record<OptionSpec['type'], string> = { string: 'string', number: 'int', list: 'list', map: 'map', bool: '' };

export const GLOBAL_OPTIONS = [
  { name: 'root', type: 'string', help: 'Persistent storage root (default "/var/lib/berth", or $BERTH_ROOT)' },
  { name: 'runroot', type: 'string', help: 'Volatile state root (default derived from --root, or $BERTH_RUNROOT)' },
  { name: 'config', type: 'string', help: 'Engine configuration file (default "/etc/berth/berth.json" if it exists, or $BERTH_CONFIG)' },
  { name: 'storage-driver', type: 'string', help: 'Storage driver of new containers: overlay, fuse-overlayfs or auto (default "auto", or $BERTH_STORAGE_DRIVER)' },
  { name: 'cluster-store', type: 'string', help: 'Cluster store of multi-host networks: etcd://HOST:PORT[,HOST:PORT] or etcds:// (or $BERTH_CLUSTER_STORE)' },
  { name: 'host', short: 'H', type: 'string', help: 'Remote engine to connect to: unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT] (or $BERTH_HOST)' },
  { name: 'tls', type: 'bool', help: 'Use TLS with a tcp:// host; implied by --tlsverify' },
  { name: 'tlsverify', type: 'bool', help: 'Use TLS and verify the remote (or $BERTH_TLS_VERIFY)' },
  { name: 'tlscacert', type: 'string', help: 'Trust certs signed only by this CA (default "$BERTH_CERT_PATH/ca.pem")' },
  { name: 'tlscert', type: 'string', help: 'Path to TLS certificate file (default "$BERTH_CERT_PATH/cert.pem")' },
  { name: 'tlskey', type: 'string', help: 'Path to TLS key file (default "$BERTH_CERT_PATH/key.pem")' },
  { name: 'context', short: 'c', type: 'string', help: 'Name of the context to use (or $BERTH_CONTEXT; see "berth context ls")' },
  { name: 'cluster-advertise', type: 'string', help: "This host's address (or interface) for the other hosts of the cluster (or $BERTH_CLUSTER_ADVERTISE)" },
  { name: 'log-level', short: 'l', type: 'string', help: 'Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") (default "warn")' },
  { name: 'debug', short: 'D', type: 'bool', help: 'Enable debug mode (--log-level debug)' },
  { name: 'version', short: 'v', type: 'bool', help: 'Print version information and quit' },
  { name: 'help', short: 'h', type: 'bool', help: 'Print usage' },
] as const;

const COMMON = ['run', 'exec', 'ps', 'images', 'logs', 'inspect', 'info', 'version'];

export function rootHelp(): string {
  const shortcuts = new Map<string, string>();
  for (const c of COMMANDS) {
    if (c.hidden) continue;
    for (const s of c.shortcuts ?? []) shortcuts.set(s, c.summary);
    if (!c.group) shortcuts.set(c.name, c.summary);
  }
  const common = COMMON.map((n) => [n, shortcuts.get(n)!] as const);
  const others = [...shortcuts].filter(([n]) => !COMMON.includes(n)).sort(([a], [b]) => a.localeCompare(b));
  return [
    'Usage:  berth [OPTIONS] COMMAND',
    '',
    'A daemonless container engine on top of runc',
    '',
    'Common Commands:',
    ...twoColumns(common),
    '',
    'Management Commands:',
    ...twoColumns(Object.entries(GROUPS)),
    '',
    'Commands:',
    ...twoColumns(others),
    '',
    'Global Options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    "Run 'berth COMMAND --help' for more information on a command.",
    '',
  ].join('\n');
}

export function groupHelp(group: Group): string {
  const cmds = COMMANDS.filter((c) => c.group === group && !c.hidden).sort((a, b) => a.name.localeCompare(b.name));
  return [
    `Usage:  berth ${group} COMMAND`,
    '',
    GROUPS[group],
    '',
    'Commands:',
    ...twoColumns(cmds.map((c) => [c.name, c.summary])),
    '',
    `Run 'berth ${group} COMMAND --help' for more information on a command.`,
    '',
  ].join('\n');
}

export function usageLine(invokedAs: string, c: Command): string {
  return `Usage:  berth ${invokedAs} ${c.usage}`.trimEnd();
}

export function commandHelp(invokedAs: string, c: Command): string {
  const names = commandNames(c);
  return [
    usageLine(invokedAs, c),
    '',
    c.summary,
    ...(names.length > 1 ? ['', 'Aliases:', `  ${names.join(', ')}`] : []),
    '',
    'Options:',
    ...optionLines([...c.options, { name: 'help', type: 'bool', help: 'Print usage' }]),
    '',
  ].join('\n');
}

function twoColumns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(10, ...rows.map(([n]) => n.length + 2));
  return rows.map(([n, s]) => `  ${n.padEnd(width)}${s}`);
}

function optionLines(options: readonly OptionSpec[]): string[] {
  const left = options.filter((o) => !o.hidden).map((o) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.name}`;
    return [`${flag}${TYPE_WORDS[o.type] ? ` ${TYPE_WORDS[o.type]}` : ''}`, o.help] as const;
  });
  const width = Math.max(...left.map(([l]) => l.length)) + 3;
  return left.map(([l, h]) => `  ${l.padEnd(width)}${h}`);
}
