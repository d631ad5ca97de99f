/**
 * The per-container monitor: conmon. It double-forks away from Berth (so the container outlives the
 * command that started it), runs `runc create` under itself, keeps the container's stdio, writes the
 * k8s-file log, and on exit writes the exit file `<exits>/<id>` and runs the exit command.
 *
 * Files of one container's monitor (the "monitor dir", `<exits>/<id>.mon`, conmon's persist dir):
 *   conmon.pid  the daemonized conmon's pid   exit  its exit status   oom  present after an OOM kill
 * conmon 2.1.6 also drops `oom` into its working directory, which we set to the bundle.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type { StoreLayout } from '../paths.js';
import { ensureDir } from '../util/fs.js';
import { invokeErrorFromText } from './invoke.js';
import type { RuncCli } from './runc.js';

export interface MonitorCreateRequest {
  id: string;
  bundle: string;
  logPath: string;
  tty: boolean;
  openStdin: boolean;
  /** argv[0] must be an absolute path: conmon execv()s it without a PATH search. */
  exitCommand?: string[];
  /** Absolute path of the OCI runtime (--runtime); default: the host's runc. */
  runtime?: string;
  /** conmon's --log-size-max: past it, conmon replaces the log by a new empty file (a rename over it); for max-file 1 */
  logSizeMax?: number;
}

const SYNC_TIMEOUT_MS = 60_000;

export function monitorDir(layout: StoreLayout, id: string): string {
  return path.join(layout.exits, `${id}.mon`);
}

/**
 * The runtime a container was created with, kept beside its monitor's files until clearExit: the verbs
 * that follow (start, kill, delete, exec...) run the same one.
 */
export function runtimeFile(layout: StoreLayout, id: string): string {
  return path.join(monitorDir(layout, id), 'runtime');
}

export async function chosenRuntime(layout: StoreLayout, id: string): Promise<string | undefined> {
  try {
    return (await fsp.readFile(runtimeFile(layout, id), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function exitFile(layout: StoreLayout, id: string): string {
  return path.join(layout.exits, id);
}

export function conmonArgs(layout: StoreLayout, runcPath: string, req: MonitorCreateRequest): string[] {
  const args = [
    '--api-version', '1',
    '-c', req.id, '-u', req.id, '-n', req.id,
    '-r', runcPath,
    '-b', req.bundle,
    '-p', path.join(req.bundle, 'pidfile'),
    '-P', path.join(monitorDir(layout, req.id), 'conmon.pid'),
    '-0', monitorDir(layout, req.id),
    '--exit-dir', layout.exits,
    '-l', `k8s-file:${req.logPath}`,
    '--log-level', 'warning',
    '--socket-dir-path', layout.sockets,
    '--runtime-arg', '--root', '--runtime-arg', layout.runc,
    // The attach socket goes to <bundle>/attach whatever the path length; clients connect relative to the bundle.
    '--full-attach',
  ];
  if (req.tty) args.push('-t');
  if (req.openStdin) args.push('-i');
  // Docker never closes a tty container's stdin when a client leaves (detach keys, attach ended): the
  // next `attach` types into the same shell. Without a tty, the client's end of input ends the container's.
  if (req.openStdin && req.tty) args.push('--leave-stdin-open');
  if (req.logSizeMax) args.push('--log-size-max', String(req.logSizeMax));
  const [cmd, ...cmdArgs] = req.exitCommand ?? [];
  if (cmd) {
    args.push('--exit-command', cmd);
    for (const a of cmdArgs) args.push('--exit-command-arg', a);
  }
  return args;
}

/**
 * Starts conmon, which runs `runc create`; resolves with the container's pid once conmon reports it on
 * the sync pipe (_OCI_SYNCPIPE, fd 3: one JSON line `{"data": pid}` or `{"data": -1, "message": ...}`).
 * conmon is spawned directly rather than through util/exec's run() because it needs the extra fd.
 */
export async function startMonitor(layout: StoreLayout, conmonPath: string, runc: RuncCli, req: MonitorCreateRequest): Promise<number> {
  await Promise.all([ensureDir(layout.exits), ensureDir(layout.sockets), ensureDir(layout.runc)]);
  await fsp.rm(monitorDir(layout, req.id), { recursive: true, force: true });
  await ensureDir(monitorDir(layout, req.id), 0o700);
  if (req.runtime) await fsp.writeFile(runtimeFile(layout, req.id), req.runtime + '\n', { mode: 0o600 });
  await fsp.rm(exitFile(layout, req.id), { force: true });
  await Promise.all(['pidfile', 'oom', 'attach', 'ctl', 'winsz'].map((f) => fsp.rm(path.join(req.bundle, f), { force: true })));

  const child = spawn(conmonPath, conmonArgs(layout, req.runtime ?? runc.binary, req), {
    cwd: req.bundle,
    // setsid: Ctrl-C in the user's terminal must not reach the monitor.
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3' },
  });
  const stderr = collect(child.stderr!);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).catch(() => null);
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err: NodeJS.ErrnoException) => {
    reject(err.code === 'ENOENT'
      ? new RuntimeError(`the container monitor ${conmonPath} is not installed`, 'install conmon (apt-get install conmon)', { cause: err })
      : err);
  }));
  spawnError.catch(() => {});
  try {
    const line = await Promise.race([readSyncLine(child.stdio[3] as Readable, SYNC_TIMEOUT_MS), spawnError]);
    const msg = parseSync(line);
    if (msg && msg.data > 0) return msg.data;
    // conmon's intermediate parent exits at once; wait for it so its stderr is complete.
    await Promise.race([exited, delay(2000)]);
    throw createError(req, msg?.message ?? '', stderr());
  } finally {
    (child.stdio[3] as Readable | null)?.destroy();
    child.stderr?.destroy();
    child.unref();
  }
}

function createError(req: MonitorCreateRequest, syncMessage: string, conmonStderr: string): Error {
  const text = runcMessages(syncMessage) || syncMessage || conmonStderr;
  const command = '(container command)';
  const mapped = invokeErrorFromText(text, command);
  if (mapped) return mapped;
  return new RuntimeError(`cannot create container ${req.id}: ${text.trim() || 'the monitor (conmon) exited without a message'}`,
    'see the runtime message; check the bundle config.json', { command: 'conmon', stderr: text || conmonStderr });
}

/** runc's logrus text lines (`time=... level=error msg="..."`) reduced to their unescaped messages. */
export function runcMessages(text: string): string {
  const msgs: string[] = [];
  for (const m of text.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)) {
    try {
      msgs.push(JSON.parse(`"${m[1]}"`) as string);
    } catch {
      msgs.push(m[1]!);
    }
  }
  return msgs.join('\n');
}

interface SyncMessage {
  data: number;
  message?: string;
}

function parseSync(line: string): SyncMessage | undefined {
  try {
    const v = JSON.parse(line) as SyncMessage;
    return typeof v.data === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Reads up to the first newline (or EOF) from the sync pipe. */
function readSyncLine(stream: Readable, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => finish(new RuntimeError(`the monitor (conmon) did not report within ${timeoutMs} ms`,
      'check that conmon and runc work: run them by hand with the same bundle')), timeoutMs);
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      if (buf.includes('\n')) finish();
    };
    const finish = (err?: Error) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onEnd);
      if (err) reject(err);
      else resolve(buf.split('\n')[0] ?? '');
    };
    const onEnd = () => finish();
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onEnd);
  });
}

function collect(stream: Readable): () => string {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => {});
  return () => Buffer.concat(chunks).toString('utf8');
}

export async function monitorPid(layout: StoreLayout, id: string): Promise<number | undefined> {
  try {
    const pid = Number((await fsp.readFile(path.join(monitorDir(layout, id), 'conmon.pid'), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** True while the recorded pid is a live conmon (the comm check guards against pid reuse). */
export async function monitorAlive(layout: StoreLayout, id: string): Promise<boolean> {
  const pid = await monitorPid(layout, id);
  if (pid === undefined) return false;
  try {
    const comm = await fsp.readFile(`/proc/${pid}/comm`, 'utf8');
    const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8');
    // A zombie conmon (state Z) has exited; its parent just has not reaped it yet.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return comm.trim() === 'conmon' && state !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Makes sure a container's monitor is gone (teardown after a failed create). conmon exits on its own
 * after a failed `runc create`, so it gets a moment first; then SIGTERM (its handler runs the exit
 * command), then SIGKILL.
 */
export async function killMonitor(layout: StoreLayout, id: string): Promise<void> {
  const start = Date.now();
  while (await monitorAlive(layout, id)) {
    const waited = Date.now() - start;
    const pid = await monitorPid(layout, id);
    if (pid === undefined) return;
    if (waited > 1000) {
      try {
        process.kill(pid, waited > 3000 ? 'SIGKILL' : 'SIGTERM');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
        throw err;
      }
    }
    await delay(50);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
