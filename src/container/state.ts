import { BadStateError } from '../errors.js';

/**
 * A container's states: Podman's set, where a command that makes host objects first records the state it
 * is in (`creating`, `starting`, `removing`), so that the next command finds a killed one and finishes or
 * undoes it. Docker's words are derived (`dockerStatus`), never stored.
 */
export type ContainerState = 'creating' | 'created' | 'starting' | 'running' | 'paused' | 'restarting' | 'exited' | 'removing';

export type DockerState = Exclude<ContainerState, 'creating' | 'starting'>;

/**
 * Every allowed change, in one place. A start that fails goes back where it came from (Docker keeps a
 * container whose start failed); `restarting` is the wait of a restart policy's back-off.
 */
export const TRANSITIONS: Readonly<Record<ContainerState, readonly ContainerState[]>> = {
  creating: ['created', 'removing'],
  created: ['starting', 'removing'],
  starting: ['running', 'created', 'exited', 'removing'],
  running: ['paused', 'exited'],
  paused: ['running', 'exited'],
  exited: ['starting', 'restarting', 'removing'],
  restarting: ['starting', 'exited', 'removing'],
  removing: [],
};

/** The event a transition emits (Docker's action names); transitions not listed emit none. */
export function eventOf(from: ContainerState, to: ContainerState): string | undefined {
  if (from === 'creating' && to === 'created') return 'create';
  if (to === 'running') return from === 'paused' ? 'unpause' : 'start';
  if (to === 'paused') return 'pause';
  if (to === 'exited' && (from === 'running' || from === 'paused')) return 'die';
  return undefined;
}

/** Throws BadStateError unless `from → to` is in TRANSITIONS. */
export function checkTransition(from: ContainerState, to: ContainerState, name: string): void {
  if (!TRANSITIONS[from].includes(to)) {
    throw new BadStateError(`container ${name} cannot go from ${from} to ${to}`, 'run the command again; if it persists, remove the container with "berth rm -f"');
  }
}

/** States in which the container's process may exist: a stop or rm must end it first. */
export const LIVE_STATES: ReadonlySet<ContainerState> = new Set(['starting', 'running', 'paused', 'restarting']);

/** States a killed command leaves behind: repair finishes or undoes them. */
export const IN_PROGRESS_STATES: ReadonlySet<ContainerState> = new Set(['creating', 'starting', 'removing']);

/** Docker's State.Status word: created, running, paused, restarting, removing, exited. */
export function dockerStatus(state: ContainerState, everStarted: boolean): DockerState {
  switch (state) {
    case 'creating': return 'created';
    case 'starting': return everStarted ? 'exited' : 'created';
    default: return state;
  }
}
