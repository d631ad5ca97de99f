/**
 * Thin wrappers around the runc CLI, one per verb, all with `--root <layout.runc>` and a timeout.
 * Whether a container is "already gone" is decided from runc's text (it has no error codes): the
 * phrases below are runc 1.1's libcontainer errors ErrNotExist ("container does not exist") and the
 * state checks of kill/delete ("container not running", "process already finished").
 */
import path from 'node:path';
import { run, type CommandOptions } from '../util/exec.js';
import { pathExists } from '../util/fs.js';
import { BadStateError } from '../errors.js';

export type RuncStatus = 'created' | 'running' | 'paused' | 'stopped';

export interface RuncState {
  id: string;
  status: RuncStatus;
  pid: number;
  bundle: string;
}

const GONE = /container does not exist|process already finished|container not running|container is not running/i;

export function isGoneText(stderr: string): boolean {
  return GONE.test(stderr);
}

/** For verbs where "not running" is a state error, only an unknown container counts as gone. */
const unknown = { alreadyGone: (stderr: string) => /container does not exist/.test(stderr) };

export class RuncCli {
  /**
   * `chosen(id)` names the runtime a container was created with (--runtime), if not this one: every verb
   * on that container then runs it, as dockerd drives a container with its own runtime throughout.
   */
  constructor(readonly binary: string, readonly root: string, private readonly timeoutMs = 30_000,
    private readonly chosen?: (id: string) => Promise<string | undefined>, private readonly noCgroup = false) {}

  /** The CLI of the runtime that created container `id` (runc-compatible: same verbs, same --root). */
  async of(id: string): Promise<RuncCli> {
    const binary = await this.chosen?.(id);
    return binary && binary !== this.binary ? new RuncCli(binary, this.root, this.timeoutMs, undefined, this.noCgroup) : this;
  }

  exec(args: readonly string[], opts: CommandOptions = {}) {
    return run(this.binary, ['--root', this.root, ...args], { timeout: this.timeoutMs, ...opts });
  }

  /** The container's state, or undefined when runc does not know it. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      const { stdout } = await this.exec(['state', id], { alreadyGone: (e) => isGoneText(e) });
      const s = JSON.parse(stdout) as { id: string; status: RuncStatus; pid: number; bundle: string };
      return { id: s.id, status: s.status, pid: s.pid, bundle: s.bundle };
    } catch (err) {
      if ((err as { alreadyGone?: boolean }).alreadyGone) return undefined;
      throw err;
    }
  }

  async start(id: string): Promise<void> {
    await this.exec(['start', id], unknown);
  }

  async kill(id: string, signal: string | number, all = false): Promise<void> {
    // --all reads the container's cgroup; a rootless container has none of its own, and its init's death
    // ends the rest of its pid namespace anyway.
    await this.exec(['kill', ...(all && !this.noCgroup ? ['--all'] : []), id, String(signal)], { alreadyGone: (e) => isGoneText(e) });
  }

  async delete(id: string, force = false): Promise<void> {
    // No state folder, nothing to delete: spares a runc process on every teardown of a stopped container.
    if (!(await pathExists(path.join(this.root, id)))) return;
    await this.exec(['delete', ...(force ? ['--force'] : []), id], { alreadyGone: (e) => isGoneText(e) });
  }

  async pause(id: string): Promise<void> {
    this.needCgroup(id, 'paused', 'the freezer');
    await this.exec(['pause', id], unknown);
  }

  /** Rootless containers have no cgroup of their own (bundle/spec.ts): what needs one is refused, saying so. */
  private needCgroup(id: string, verb: string, what: string): void {
    if (!this.noCgroup) return;
    throw new BadStateError(`container ${id.slice(0, 12)} cannot be ${verb}: it runs rootless, without a cgroup of its own, which ${what} needs`,
      'run the container as root for this');
  }

  async resume(id: string): Promise<void> {
    await this.exec(['resume', id], unknown);
  }

  async update(id: string, resources: object): Promise<void> {
    this.needCgroup(id, 'updated', 'a resource limit');
    await this.exec(['update', '--resources', '-', id], { ...unknown, input: JSON.stringify(resources) });
  }

  async ps(id: string): Promise<number[]> {
    this.needCgroup(id, 'listed (top)', 'the list of its processes');
    const { stdout } = await this.exec(['ps', '--format', 'json', id], unknown);
    return (JSON.parse(stdout || '[]') as number[] | null) ?? [];
  }

  async list(): Promise<string[]> {
    const { stdout } = await this.exec(['list', '--format', 'json']);
    const rows = (JSON.parse(stdout || 'null') as { id: string }[] | null) ?? [];
    return rows.map((r) => r.id);
  }
}
