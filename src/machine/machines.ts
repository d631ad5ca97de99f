/**
 * `berth machine`: provisioning a Debian host over ssh as docker-machine's generic driver did, and driving
 * it afterwards through a context of the same name. Create walks: check the name (record and context free)
 * → record (Incomplete) → check the host (ssh works, Debian 12, node) → copy the built tree (tree.ts) to
 * PREFIX/lib/berth → run its scripts/setup.sh (packages, the link PREFIX/bin/berth) → `berth info` over
 * `ssh ... berth system dial-stdio` → context → record complete. A failure on the way undoes what create
 * made (the context, the install folder if it made it, the record) and says what it could not undo.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { AlreadyExistsError, BadStateError, InvalidArgumentError, NotFoundError, RemoteError } from '../errors.js';
import { ContextStore, checkContextName } from '../remote/contexts.js';
import { SSH_ENV, shellQuote } from '../remote/dial.js';
import { RemoteEngine } from '../remote/engine.js';
import { parseHost } from '../remote/uri.js';
import { failpoint } from '../util/failpoint.js';
import { linkOf, machineSshEnv, remoteShell, remoteShellOk, scp, type MachineLink, type ScpEndpoint, type Stdio, interactiveSsh } from './ssh.js';
import { MachineStore, type DriverName, type MachineRecord } from './store.js';
import { builtTree, type BuiltTree } from './tree.js';

export const DRIVERS: readonly DriverName[] = ['generic'];
/** docker-machine's generic driver's defaults. */
export const DEFAULT_SSH_USER = 'root';
export const DEFAULT_SSH_PORT = 22;
/** The install prefix on the remote: the tree in PREFIX/lib/berth, the link PREFIX/bin/berth. */
export const DEFAULT_PREFIX = '/usr/local';
const NODE_MIN: readonly [number, number] = [20, 5];

export interface CreateRequest {
  name: string;
  driver: string;
  sshHost: string;
  sshUser?: string;
  sshPort?: number;
  sshKey?: string;
  /** the remote install prefix (default /usr/local) */
  prefix?: string;
  /** the remote berth's root (default: its own default, /var/lib/berth for root) */
  root?: string;
  /** trust the host's key on first contact and add it to known_hosts (ssh's StrictHostKeyChecking=accept-new) */
  acceptHostKey?: boolean;
}

export type MachineState = 'Running' | 'Stopped' | 'Error';

export interface MachineStatus {
  Name: string;
  Active: string;
  DriverName: string;
  State: MachineState;
  URL: string;
  BerthVersion: string;
  Error: string;
}

/** Progress lines for the user (the CLI prints them on stderr). */
export type Progress = (line: string) => void;

const q = shellQuote;

function checkAbsolute(field: string, p: string): string {
  if (!path.isAbsolute(p) || /[\s'"\\$`]/.test(p)) throw new InvalidArgumentError(field, `"${p}" is not an absolute path without spaces or quotes`, 'give a plain absolute path, e.g. /usr/local');
  return path.normalize(p);
}

/** The fields of /etc/os-release (shell-style KEY=value lines). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

function nodeTooOld(version: string): boolean {
  const [maj = 0, min = 0] = version.split('.').map(Number);
  return maj < NODE_MIN[0] || (maj === NODE_MIN[0] && min < NODE_MIN[1]);
}

/** The facts create checks, gathered in one ssh call (sh syntax: the remote user's shell may be any). */
function factsScript(installDir: string): string {
  return [
    'cat /etc/os-release 2>/dev/null || echo NO_OS_RELEASE=1',
    'echo "@@node=$(node -p process.versions.node 2>/dev/null)"',
    'echo "@@npm=$(npm -v 2>/dev/null)"',
    'echo "@@tar=$(command -v tar)"',
    `echo "@@exists=$([ -e ${q(installDir)} ] && echo yes)"`,
  ].join('; ');
}

export class Machines {
  readonly store: MachineStore;
  private readonly contexts: ContextStore;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {
    this.store = new MachineStore(env);
    this.contexts = new ContextStore(env);
  }

  /** Checks every input before anything is stored or dialled. */
  private async checkRequest(req: CreateRequest): Promise<MachineRecord> {
    if (!DRIVERS.includes(req.driver as DriverName)) {
      throw new InvalidArgumentError('--driver', `"${req.driver}" is not a driver Berth has (it has: ${DRIVERS.join(', ')})`, 'provision the host yourself (Debian 12 with node), then use --driver generic --ssh-host HOST');
    }
    checkContextName(req.name);
    if (!req.sshHost) throw new InvalidArgumentError('--ssh-host', 'is required by the generic driver', 'give the host\'s name or address: --ssh-host HOST');
    const user = req.sshUser ?? DEFAULT_SSH_USER;
    const port = req.sshPort ?? DEFAULT_SSH_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('--ssh-port', `${port} is not a port from 1 to 65535`);
    const host = req.sshHost.includes(':') ? `[${req.sshHost}]` : req.sshHost;
    const url = `ssh://${user}@${host}:${port}`;
    try {
      parseHost(url);
    } catch (err) {
      throw new InvalidArgumentError('--ssh-host/--ssh-user', `"${user}@${req.sshHost}" is not a user and host ssh:// can name`, 'give a host name or address, and a user of letters, digits, ".", "_" or "-"', { cause: err });
    }
    let keyPath: string | undefined;
    if (req.sshKey !== undefined) {
      keyPath = path.resolve(req.sshKey);
      try {
        accessSync(keyPath, fsConstants.R_OK);
      } catch (err) {
        throw new InvalidArgumentError('--ssh-key', `cannot read the key file ${keyPath}`, 'give the private key file that the remote user\'s authorized_keys accepts', { cause: err });
      }
    }
    const prefix = checkAbsolute('--install-prefix', req.prefix ?? DEFAULT_PREFIX);
    const root = req.root === undefined ? undefined : checkAbsolute('--berth-root', req.root);
    if (await this.store.exists(req.name)) throw new AlreadyExistsError('machine', req.name, 'pick another name, or remove it first ("berth machine rm")');
    if (await this.contexts.host(req.name).then(() => true, (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)))) {
      throw new AlreadyExistsError('context', req.name, 'a machine gets a context of its own name: pick another name, or remove the context first ("berth context rm")');
    }
    return {
      Name: req.name, DriverName: 'generic', Url: url, Created: new Date().toISOString(), Incomplete: true,
      Ssh: { Host: req.sshHost, User: user, Port: port, ...(keyPath ? { KeyPath: keyPath } : {}) },
      Remote: { Prefix: prefix, InstallDir: path.join(prefix, 'lib', 'berth'), Berth: path.join(prefix, 'bin', 'berth'), ...(root ? { Root: root } : {}), MadeInstallDir: false },
    };
  }

  async create(req: CreateRequest, progress: Progress = () => {}): Promise<MachineRecord> {
    const rec = await this.checkRequest(req);
    const tree = builtTree();
    await this.store.add(rec);
    let contextMade = false;
    try {
      // The user's yes to an unknown host key, given up front: ssh records it in their known_hosts, and a
      // changed key is still refused.
      const link = linkOf(rec, req.acceptHostKey ? { ...this.env, BERTH_SSH_OPTS: `-o StrictHostKeyChecking=accept-new ${this.env.BERTH_SSH_OPTS ?? ''}` } : this.env);
      progress(`Checking ${rec.Ssh.Host} (${rec.Url})...`);
      await this.checkHost(rec, link);
      // Flagged before the copy starts: a create killed mid-copy has its record say what is on the host.
      rec.Remote.MadeInstallDir = true;
      await this.store.update(rec);
      await this.install(rec, link, tree, progress);
      failpoint('machine.create.after-copy');
      rec.Installed!.Version = await this.checkBerth(rec, link);
      progress(`Registering the context "${rec.Name}" (${rec.Url})...`);
      await this.contexts.create(rec.Name, { host: rec.Url, description: `berth machine ${rec.Name} (generic driver)`, ssh: { Identity: rec.Ssh.KeyPath, Berth: rec.Remote.Berth, Root: rec.Remote.Root } });
      contextMade = true;
      delete rec.Incomplete;
      await this.store.update(rec);
      progress(`${rec.Name} is ready: berth --context ${rec.Name} ..., or eval $(berth machine env ${rec.Name})`);
      return rec;
    } catch (err) {
      await this.undoCreate(rec, contextMade, progress);
      throw err;
    }
  }

  /** Ssh works, the OS is Debian 12, node is new enough. Fills rec.Remote's facts and MadeInstallDir. */
  private async checkHost(rec: MachineRecord, link: MachineLink): Promise<void> {
    const { stdout } = await remoteShellOk(link, 'checking the host', factsScript(rec.Remote.InstallDir), { timeoutMs: 60_000 });
    const os = parseOsRelease(stdout);
    const facts = Object.fromEntries([...stdout.matchAll(/^@@(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    const found = os.PRETTY_NAME || [os.ID, os.VERSION_ID].filter(Boolean).join(' ') || 'no /etc/os-release';
    rec.Remote.Os = found;
    if (os.ID !== 'debian' || os.VERSION_ID !== '12') {
      throw new BadStateError(`${rec.Ssh.Host} runs ${found} (ID=${os.ID ?? '?'}, VERSION_ID=${os.VERSION_ID ?? '?'}), not Debian 12`,
        'the generic driver provisions Debian 12 (bookworm) hosts only; pick such a host, or install Berth there by hand (scripts/setup.sh) and use "berth context create"');
    }
    if (!facts.node) throw new BadStateError(`${rec.Ssh.Host} has no node on the PATH of ${rec.Ssh.User}`, `install Node.js ${NODE_MIN.join('.')}+ there (apt-get install nodejs, or from nodejs.org), then try again`);
    if (nodeTooOld(facts.node)) throw new BadStateError(`${rec.Ssh.Host} has node ${facts.node}; Berth needs ${NODE_MIN.join('.')}+`, 'install a newer Node.js there, then try again');
    if (!facts.tar) throw new BadStateError(`${rec.Ssh.Host} has no tar, which the copy needs`, 'install it there: apt-get install tar');
    rec.Remote.Node = facts.node;
    // npm is recorded, not required: the built tree needs neither npm install nor a build (tree.ts).
    if (facts.npm) rec.Remote.Npm = facts.npm;
    if (facts.exists === 'yes') {
      throw new BadStateError(`${rec.Ssh.Host} already has ${rec.Remote.InstallDir}`,
        'another machine (or a hand install) uses it: give another --install-prefix, or remove the folder there first');
    }
  }

  /**
   * Copies the built tree into INSTALL.new, swaps it in (the previous tree, on upgrade, goes only once the
   * new one is complete), runs its setup.sh with the machine's prefix, and records what was installed.
   */
  private async install(rec: MachineRecord, link: MachineLink, tree: BuiltTree, progress: Progress): Promise<void> {
    const dir = rec.Remote.InstallDir;
    const fresh = `${dir}.new`;
    progress(`Copying this Berth's built tree (${tree.marker}) to ${rec.Ssh.Host}:${dir}...`);
    const tar = spawn('tar', ['-C', tree.root, '--no-recursion', '-czf', '-', '--', ...tree.paths], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tarErr = '';
    tar.stderr!.on('data', (c: Buffer) => { tarErr += c.toString(); });
    const tarDone = new Promise<number | null>((resolve) => tar.once('close', resolve));
    await remoteShellOk(link, 'copying Berth', `rm -rf ${q(fresh)} && mkdir -p ${q(fresh)} && tar -xzf - -C ${q(fresh)} && printf '%s\\n' ${q(tree.marker)} > ${q(`${fresh}/.berth-built`)}`,
      { input: tar.stdout!, timeoutMs: 600_000 });
    if ((await tarDone) !== 0) throw new BadStateError(`packing this Berth failed: ${tarErr.trim()}`, `check that ${tree.root} is readable`);
    progress(`Running scripts/setup.sh on ${rec.Ssh.Host}...`);
    const bin = path.dirname(rec.Remote.Berth);
    const res = await remoteShell(link, [
      `rm -rf ${q(`${dir}.old`)}`, `if [ -e ${q(dir)} ]; then mv ${q(dir)} ${q(`${dir}.old`)}; fi`, `mv ${q(fresh)} ${q(dir)}`, `rm -rf ${q(`${dir}.old`)}`,
      `mkdir -p ${q(bin)}`, `cd ${q(dir)}`, `bash scripts/setup.sh --bin-dir ${q(bin)} 2>&1`,
    ].join(' && '), { timeoutMs: 900_000 });
    for (const line of res.stdout.trim().split('\n').filter(Boolean)) progress(`  ${rec.Name}: ${line}`);
    if (res.exitCode !== 0) {
      const said = res.stdout.trim().split('\n').filter((l) => /error/i.test(l)).slice(-2).join('\n') || res.stdout.trim().split('\n').slice(-3).join('\n');
      throw new BadStateError(`scripts/setup.sh failed on ${rec.Ssh.Host} (exit ${res.exitCode}): ${said}`, 'do what its message says on the host ("berth machine ssh"), then "berth machine upgrade" (or create again)');
    }
    rec.Installed = { Version: tree.version, From: tree.marker, At: new Date().toISOString() };
  }

  /** `berth info` answers over `ssh ... berth system dial-stdio`: the remote berth's version. */
  private async checkBerth(rec: MachineRecord, link: MachineLink): Promise<string> {
    const engine = new RemoteEngine(rec.Url, link.env);
    try {
      await engine.system.info();
      return (await engine.system.version()).Version;
    } finally {
      engine.close();
    }
  }

  /** Undoes a failed create: context, the install folder (only if create made it), the record. Reports each. */
  private async undoCreate(rec: MachineRecord, contextMade: boolean, progress: Progress): Promise<void> {
    if (contextMade) await this.contexts.remove(rec.Name, { force: true }).catch(() => undefined);
    if (rec.Remote.MadeInstallDir) {
      const removed = await this.purgeRemote(rec).then(() => true, () => false);
      progress(removed
        ? `Removed what create had put on ${rec.Ssh.Host}: ${rec.Remote.InstallDir}(.new) and the link ${rec.Remote.Berth}`
        : `Could not reach ${rec.Ssh.Host} to remove what create put there: ${rec.Remote.InstallDir}(.new) and the link ${rec.Remote.Berth} may be left; remove them by hand`);
    } else {
      progress(`Nothing was left on ${rec.Ssh.Host}`);
    }
    await this.store.remove(rec.Name);
  }

  /** Removes the install folder (and its .new/.old) and the link, if the link points into it. The root's data stays. */
  private async purgeRemote(rec: MachineRecord): Promise<void> {
    const dir = rec.Remote.InstallDir;
    await remoteShellOk(linkOf(rec, this.env), 'removing the install', [
      `if [ "$(readlink ${q(rec.Remote.Berth)})" = ${q(`${dir}/bin/berth.js`)} ]; then rm -f ${q(rec.Remote.Berth)}; fi`,
      `rm -rf ${q(dir)} ${q(`${dir}.new`)} ${q(`${dir}.old`)}`,
    ].join('; '), { timeoutMs: 120_000 });
  }

  async upgrade(name: string, progress: Progress = () => {}): Promise<MachineRecord> {
    const rec = await this.complete(name);
    const link = linkOf(rec, this.env);
    await this.install(rec, link, builtTree(), progress);
    rec.Installed!.Version = await this.checkBerth(rec, link);
    await this.store.update(rec);
    progress(`${name}: Berth ${rec.Installed!.Version} installed`);
    return rec;
  }

  /**
   * Removes the record and the context; with `purge`, first the remote install (PREFIX/lib/berth and the
   * link; the remote root's images and containers stay). `force`: the local part even when the remote fails.
   */
  async remove(name: string, opts: { purge?: boolean; force?: boolean } = {}, progress: Progress = () => {}): Promise<void> {
    const rec = await this.store.get(name);
    if (opts.purge) {
      try {
        await this.purgeRemote(rec);
        progress(`Removed ${rec.Remote.InstallDir} and ${rec.Remote.Berth} from ${rec.Ssh.Host}`);
      } catch (err) {
        if (!opts.force) throw err;
        progress(`Could not remove the install from ${rec.Ssh.Host} (${(err as Error).message}); removing the local record anyway (-f)`);
      }
    } else {
      progress(`Left the install on ${rec.Ssh.Host} (${rec.Remote.InstallDir}, ${rec.Remote.Berth}); --purge removes it`);
    }
    // A create that did not finish has no context, or one it did not make: only a machine's own is removed.
    const ctx = await this.contexts.inspect(name).catch(() => undefined) as { Endpoints?: { docker?: { Host?: string } } } | undefined;
    if (ctx?.Endpoints?.docker?.Host === rec.Url) await this.contexts.remove(name, { force: true });
    await this.store.remove(name);
  }

  private async complete(name: string): Promise<MachineRecord> {
    const rec = await this.store.get(name);
    if (rec.Incomplete) throw new BadStateError(`machine ${name} was not fully created (its create stopped before the end)`, `remove it with "berth machine rm ${name}" (--purge to remove what it put on the host), then create it again`);
    return rec;
  }

  async inspect(name: string): Promise<MachineRecord> {
    return this.store.get(name);
  }

  /** Which machine this shell or the current context points at: BERTH_HOST first, as commands choose. */
  private async activeName(records: readonly MachineRecord[]): Promise<string | undefined> {
    if (this.env.BERTH_HOST) return records.find((r) => r.Url === this.env.BERTH_HOST)?.Name;
    const ctx = this.env.BERTH_CONTEXT || (await this.contexts.current());
    return records.find((r) => r.Name === ctx)?.Name;
  }

  /** Every machine with its state: Running (answers), Stopped (cannot be reached), Error (anything else). */
  async list(opts: { timeoutS?: number } = {}): Promise<MachineStatus[]> {
    const records = await this.store.list();
    const active = await this.activeName(records);
    return Promise.all(records.map(async (rec): Promise<MachineStatus> => {
      const row = { Name: rec.Name, Active: rec.Name === active ? '*' : '-', DriverName: rec.DriverName, URL: rec.Url };
      if (rec.Incomplete) return { ...row, State: 'Error', BerthVersion: 'Unknown', Error: 'create did not finish: remove it with "berth machine rm"' };
      // A new connection, not the shared master (remote/mux.ts): a master outlives the sshd that accepted
      // it, and the state says whether the host takes connections now, as docker-machine's generic driver.
      const probe = ['-o ControlMaster=no -o ControlPath=none', ...(opts.timeoutS ? [`-o ConnectTimeout=${opts.timeoutS}`] : [])].join(' ');
      const link = linkOf(rec, { ...this.env, BERTH_SSH_OPTS: `${probe} ${this.env.BERTH_SSH_OPTS ?? ''}`.trim() });
      const engine = new RemoteEngine(rec.Url, link.env);
      try {
        const v = await engine.system.version();
        return { ...row, State: 'Running', BerthVersion: `v${v.Version}`, Error: '' };
      } catch (err) {
        const stopped = err instanceof RemoteError && (err.reason === 'unreachable' || err.reason === 'timeout');
        return { ...row, State: stopped ? 'Stopped' : 'Error', BerthVersion: 'Unknown', Error: (err as Error).message };
      } finally {
        engine.close();
      }
    }));
  }

  /** The shell lines of `machine env` (bash/sh): export or unset each variable a machine sets. */
  async envLines(name: string, opts: { unset?: boolean } = {}): Promise<string[]> {
    const vars = ['BERTH_HOST', ...Object.values(SSH_ENV), 'BERTH_MACHINE_NAME'];
    // Each line ends with ";": `eval $(...)` joins them into one line, where `unset` would otherwise be an
    // argument of the `export` before it.
    if (opts.unset) return [`unset ${vars.join(' ')};`];
    const rec = await this.complete(name);
    const values: Record<string, string | undefined> = { BERTH_HOST: rec.Url, ...machineSshEnv(rec), BERTH_MACHINE_NAME: rec.Name };
    const dq = (v: string) => `"${v.replace(/(["\\$`])/g, '\\$1')}"`;
    return [
      ...vars.map((k) => (values[k] === undefined ? `unset ${k};` : `export ${k}=${dq(values[k]!)};`)),
      '# Run this command to configure your shell:',
      `# eval $(berth machine env ${name})`,
    ];
  }

  /** `machine ssh NAME [CMD...]`: the remote command's exit status. */
  async ssh(name: string, command: readonly string[], io: Stdio): Promise<number> {
    return interactiveSsh(linkOf(await this.complete(name), this.env), command, io);
  }

  /** `[MACHINE:]PATH`: a machine's path when the part before the first ':' names a machine, else a local path. */
  async endpoint(arg: string): Promise<ScpEndpoint> {
    const m = /^([^:/]+):(.*)$/.exec(arg);
    if (!m) return { kind: 'local', path: arg };
    const [, name, p] = m as unknown as [string, string, string];
    if (!(await this.store.exists(name).catch(() => false))) {
      throw new NotFoundError('machine', name, `"${arg}" names no machine; list them with "berth machine ls" (a local path with ":" in it: give it as ./${arg})`);
    }
    if (!p) throw new InvalidArgumentError('path', `"${arg}" has no path after "${name}:"`, 'give MACHINE:PATH');
    return { kind: 'machine', name, path: p, link: linkOf(await this.complete(name), this.env) };
  }

  async scp(from: string, to: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const [a, b] = [await this.endpoint(from), await this.endpoint(to)];
    if (a.kind === 'local' && b.kind === 'local') throw new InvalidArgumentError('path', `neither "${from}" nor "${to}" names a machine`, 'give MACHINE:PATH on at least one side');
    await scp(a, b, { recursive: opts.recursive, env: this.env });
  }
}
