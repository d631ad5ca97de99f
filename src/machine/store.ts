/**
 * Machine records: one JSON file per machine, `$XDG_CONFIG_HOME/berth/machines/<name>.json` (beside the
 * contexts, 0600 in a 0700 folder: they name key files and hosts). Names follow the contexts' rule, since
 * every machine has a context of the same name. A record is written `Incomplete` before `create` touches
 * the remote and cleared at its end: a create killed in the middle leaves a record that `machine ls` shows
 * as Error and `machine rm` removes, never a machine that looks usable.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { AlreadyExistsError, NotFoundError } from '../errors.js';
import { checkContextName, configDir } from '../remote/contexts.js';
import { ensureDir, pathExists, readJsonIfExists, writeJsonAtomic } from '../util/fs.js';

export type DriverName = 'generic';

export interface MachineRecord {
  Name: string;
  DriverName: DriverName;
  /** ssh://USER@HOST:PORT, the context's host */
  Url: string;
  Created: string;
  /** set while `create` runs; a record still flagged is a create that did not finish */
  Incomplete?: boolean;
  Ssh: { Host: string; User: string; Port: number; KeyPath?: string };
  Remote: {
    /** the install prefix: the tree in PREFIX/lib/berth, the link PREFIX/bin/berth */
    Prefix: string;
    InstallDir: string;
    Berth: string;
    /** the remote berth's root; absent: its default */
    Root?: string;
    /** whether `create` made InstallDir (a failed create removes only what it made) */
    MadeInstallDir: boolean;
    Os?: string;
    Node?: string;
    Npm?: string;
  };
  /** what `create`/`upgrade` copied: this Berth's version and where it came from */
  Installed?: { Version: string; From: string; At: string };
}

export class MachineStore {
  readonly dir: string;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.dir = path.join(configDir(env), 'machines');
  }

  private file(name: string): string {
    checkContextName(name);
    return path.join(this.dir, `${name}.json`);
  }

  async get(name: string): Promise<MachineRecord> {
    const rec = await readJsonIfExists<MachineRecord>(this.file(name));
    if (!rec) throw new NotFoundError('machine', name);
    return rec;
  }

  async exists(name: string): Promise<boolean> {
    return pathExists(this.file(name));
  }

  /** A new record: refused when one of that name exists (O_EXCL on a placeholder, then the atomic write). */
  async add(rec: MachineRecord): Promise<void> {
    const file = this.file(rec.Name);
    await ensureDir(this.dir, 0o700);
    const claim = await fsp.open(file, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') throw new AlreadyExistsError('machine', rec.Name, 'pick another name, or remove the machine first ("berth machine rm")');
      throw err;
    });
    await claim.close();
    await writeJsonAtomic(file, rec, 0o600);
  }

  async update(rec: MachineRecord): Promise<void> {
    await this.get(rec.Name);
    await writeJsonAtomic(this.file(rec.Name), rec, 0o600);
  }

  async remove(name: string): Promise<void> {
    await fsp.rm(this.file(name), { force: true });
  }

  async list(): Promise<MachineRecord[]> {
    const names = await fsp.readdir(this.dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    const out: MachineRecord[] = [];
    for (const n of names) {
      // Temp files of an atomic write (.tmp-*) and an add's empty claim (unreadable JSON) are not machines.
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const rec = await readJsonIfExists<MachineRecord>(path.join(this.dir, n)).catch(() => undefined);
      if (rec?.Name) out.push(rec);
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }
}
