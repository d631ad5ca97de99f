/**
 * The command table: Docker's management forms (`berth container run`) and its top-level shortcuts
 * (`berth run`, `berth ps`, `berth rmi`) resolve to the same command.
 */
import type { Command, Group } from '../command.js';
import { containerCommands } from './containers.js';
import { healthcheckCommands } from './health.js';
import { imageCommands } from './images.js';
import { buildCommands } from './build.js';
import { pullPushCommands } from './registry.js';
import { networkCommands } from './networks.js';
import { volumeCommands } from './volumes.js';
import { systemCommands } from './system.js';
import { registryCommands } from './registries.js';
import { serviceCommands } from './service.js';
import { contextCommands } from './context.js';
import { machineCommands } from './machine.js';

export const GROUPS: Record<Group, string> = {
  container: 'Manage containers',
  image: 'Manage images',
  network: 'Manage networks',
  volume: 'Manage volumes',
  system: 'Manage Berth',
  healthcheck: 'Manage healthchecks of containers',
  context: 'Manage contexts (remote engines)',
  machine: 'Manage machines (remote hosts provisioned over ssh)',
};

export const COMMANDS: readonly Command[] = [...containerCommands, ...imageCommands, ...buildCommands, ...pullPushCommands, ...networkCommands, ...volumeCommands, ...systemCommands, ...healthcheckCommands, ...registryCommands, ...serviceCommands, ...contextCommands, ...machineCommands];

export type Resolved =
  | { kind: 'command'; command: Command; invokedAs: string; rest: string[] }
  | { kind: 'group'; group: Group; rest: string[] }
  | { kind: 'unknown'; invokedAs: string; group?: Group };

export function isGroup(word: string | undefined): word is Group {
  return word !== undefined && Object.hasOwn(GROUPS, word);
}

/** `words` starts at the command (global options already taken off). */
export function resolveCommand(words: readonly string[]): Resolved {
  const [first, second, ...after] = words;
  if (isGroup(first)) {
    if (second === undefined || second.startsWith('-')) return { kind: 'group', group: first, rest: words.slice(1) };
    const command = COMMANDS.find((c) => c.group === first && (c.name === second || c.aliases?.includes(second)));
    if (!command) return { kind: 'unknown', invokedAs: `${first} ${second}`, group: first };
    return { kind: 'command', command, invokedAs: `${first} ${second}`, rest: after };
  }
  const command = COMMANDS.find((c) => (c.group === undefined && c.name === first) || c.shortcuts?.includes(first!));
  if (!command) return { kind: 'unknown', invokedAs: first ?? '' };
  return { kind: 'command', command, invokedAs: first!, rest: words.slice(1) };
}

/** Every name a command answers to, for its help: "berth container ls, berth container ps, berth ps". */
export function commandNames(c: Command): string[] {
  const inGroup = c.group ? [c.name, ...(c.aliases ?? [])].map((n) => `berth ${c.group} ${n}`) : [`berth ${c.name}`];
  return [...inGroup, ...(c.shortcuts ?? []).map((s) => `berth ${s}`)];
}
