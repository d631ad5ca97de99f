/**
 * attach, exec and resize. Docker's exec is three calls (create an instance, start it, inspect it for the
 * exit code) where Berth's Engine has one that runs to completion, so the instances live here, in the
 * service's shared state, for as long as the service runs (Berth has no daemon to keep them).
 */
import { randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { CannotInvokeError, CommandNotFoundError, NotFoundError } from '../errors.js';
import type { ContainerInspect, ExecRequest, StdioStreams } from '../types.js';
import { ApiError, messageOf } from './errors.js';
import { readJson, sendJson, sendStatus } from './http.js';
import type { Call, Router, ServiceState } from './router.js';
import { hijack, type HijackedStreams } from './streams.js';
import { containerTerminal, ServiceTerminal, sizeParams } from './exec-terminal.js';
import { attachQuery, replayLogs, untilStarted, upgradedBody } from './exec-streams.js';
import { execConfig, startConfig } from './exec-config.js';

const EXITED_EXEC_KEPT_MS = 10 * 60_000;

export interface ExecInstance {
  id: string;
  containerId: string;
  req: ExecRequest;
  attach: { stdin: boolean; stdout: boolean; stderr: boolean };
  terminal: ServiceTerminal;
  status: 'created' | 'running' | 'exited';
  exitCode: number | null;
}

/** The exec endpoints of the Engine API, with attach and the container's resize. */
export function registerExec(r: Router): void {
  r.add('POST', '/containers/{id}/attach', attachContainer);
  r.add('POST', '/containers/{id}/resize', async (call) => {
    const size = sizeParams(call.query);
    const c = await call.engine.containers.inspect(call.params.id!);
    if (!c.State.Running) throw new ApiError(409, `Container ${c.Id} is not running`);
    // Without a tty Docker answers 200 and changes nothing (containerd's shim ignores it); so does this.
    containerTerminal(call.state, c.Id).resize(size);
    sendStatus(call.res!, 200);
  });
  r.add('POST', '/containers/{id}/exec', createExec);
  r.add('POST', '/exec/{id}/start', startExec);
  r.add('POST', '/exec/{id}/resize', async (call) => {
    const size = sizeParams(call.query);
    execInstance(call.state, call.params.id!).terminal.resize(size);
    sendStatus(call.res!, 200);
  });
  r.add('GET', '/exec/{id}/json', async (call) => sendJson(call.res!, 200, inspectExec(execInstance(call.state, call.params.id!))));
}

/** The exec instance `id` (Docker takes the full ID only). */
export function execInstance(state: ServiceState, id: string): ExecInstance {
  const inst = state.shared.get(`exec:${id}`) as ExecInstance | undefined;
  if (!inst) throw new NotFoundError('exec', id);
  return inst;
}

async function attachContainer(call: Call): Promise<void> {
  const q = attachQuery(call.query);
  const c = await call.engine.containers.inspect(call.params.id!);
  if (c.State.Paused) throw new ApiError(409, `container ${c.Id} is paused, unpause the container before attach`);
  const tty = c.Config.Tty === true;
  const io = hijack(call, { tty });
  const streams: StdioStreams = {
    ...(q.stdin ? { stdin: io.stdin } : {}),
    ...(q.stdout ? { stdout: io.stdout } : {}),
    ...(q.stderr ? { stderr: io.stderr } : {}),
    terminal: containerTerminal(call.state, c.Id),
  };
  try {
    if (!q.stream) {
      if (q.logs) await replayLogs(call, c.Id, streams, tty);
      return;
    }
    let replay = q.logs;
    if (!c.State.Running) {
      // docker run and start -a attach first, then start: the attach waits, and the whole run is new output.
      const started = await untilStarted(call, c);
      if (started === 'gone') return;
      if (started === 'ended') return void await replayLogs(call, c.Id, streams, tty);
      replay = true;
    }
    await attachRunning(call, c, streams, tty, { replay, ...(q.detachKeys !== undefined ? { detachKeys: q.detachKeys } : {}) });
  } catch (err) {
    // The status is sent: Docker writes the failure into the stream instead.
    if (!io.closed()) await writeText(io.stdout, `Error: ${messageOf(err)}\n`);
  } finally {
    await io.end();
  }
}

async function attachRunning(call: Call, c: ContainerInspect, streams: StdioStreams, tty: boolean, opts: { replay: boolean; detachKeys?: string }): Promise<void> {
  try {
    await call.engine.containers.attach(c.Id, streams, { ...opts, signal: call.signal });
  } catch (err) {
    // It ended between our look and the attach: what it printed is still owed.
    const now = await call.engine.containers.inspect(c.Id).catch(() => undefined);
    if (!now || now.State.Running) throw err;
    await replayLogs(call, c.Id, streams, tty);
  }
}

async function createExec(call: Call): Promise<void> {
  const body = await readJson(call);
  const cfg = execConfig(body);
  const c = await call.engine.containers.inspect(call.params.id!);
  if (c.State.Paused) throw new ApiError(409, `Container ${c.Id} is paused, unpause the container before exec`);
  if (!c.State.Running) throw new ApiError(409, `Container ${c.Id} is not running`);
  const inst: ExecInstance = {
    id: randomBytes(32).toString('hex'),
    containerId: c.Id,
    req: cfg.req,
    attach: cfg.attach,
    terminal: new ServiceTerminal(),
    status: 'created',
    exitCode: null,
  };
  if (cfg.consoleSize) inst.terminal.resize(cfg.consoleSize);
  call.state.shared.set(`exec:${inst.id}`, inst);
  sendJson(call.res!, 201, { Id: inst.id });
}

async function startExec(call: Call): Promise<void> {
  const inst = execInstance(call.state, call.params.id!);
  const { body, call: streamCall } = call.upgraded ? await upgradedBody(call) : { body: await readJson(call, { optional: true }), call };
  const start = startConfig(body);
  if (inst.status === 'running') throw new ApiError(409, `Error: Exec command ${inst.id} is already running`);
  if (inst.status === 'exited') throw new ApiError(409, `Error: Exec command ${inst.id} has already run`);
  if (start.consoleSize) inst.terminal.resize(start.consoleSize);
  inst.status = 'running';
  if (start.detach) {
    // Run here in the background (not runc's detached exec) so that inspect can tell its exit code.
    void runExec(call, inst, {});
    if (streamCall.upgraded) streamCall.upgraded.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    else sendStatus(call.res!, 200);
    return;
  }
  const io = hijack(streamCall, { tty: inst.req.tty === true });
  try {
    await runExec(call, inst, {
      ...(inst.attach.stdin ? { stdin: io.stdin } : {}),
      ...(inst.attach.stdout ? { stdout: io.stdout } : {}),
      ...(inst.attach.stderr ? { stderr: io.stderr } : {}),
      terminal: inst.terminal,
    }, io);
  } finally {
    await io.end();
  }
}

/**
 * Runs the instance to its end and records the exit code. A command that cannot start gets Docker's
 * codes (127 not found, 126 cannot invoke) and its words in the stream, which the docker CLI prints before
 * it reads the code from inspect.
 */
async function runExec(call: Call, inst: ExecInstance, streams: StdioStreams, io?: HijackedStreams): Promise<void> {
  try {
    const res = await call.engine.containers.exec(inst.containerId, inst.req, streams);
    inst.exitCode = res.exitCode ?? 0;
  } catch (err) {
    inst.exitCode = err instanceof CommandNotFoundError ? 127 : 126;
    if (io && !io.closed()) await writeText(io.stdout, execFailure(err) + '\r\n');
  } finally {
    inst.status = 'exited';
    // Docker forgets an exec once its container goes; a service that lives for days must forget too, late
    // enough for any client to have read the exit code.
    setTimeout(() => call.state.shared.delete(`exec:${inst.id}`), EXITED_EXEC_KEPT_MS).unref();
  }
}

function execFailure(err: unknown): string {
  if (err instanceof CommandNotFoundError) return `OCI runtime exec failed: exec failed: unable to start container process: exec: "${err.command}": executable file not found in $PATH: unknown`;
  if (err instanceof CannotInvokeError) return `OCI runtime exec failed: exec failed: unable to start container process: exec: "${err.command}": permission denied: unknown`;
  return messageOf(err);
}

function inspectExec(inst: ExecInstance): Record<string, unknown> {
  const [entrypoint, ...args] = inst.req.command;
  return {
    ID: inst.id,
    Running: inst.status === 'running',
    ExitCode: inst.exitCode,
    ProcessConfig: { tty: inst.req.tty === true, entrypoint, arguments: args, privileged: inst.req.privileged === true, user: inst.req.user ?? '' },
    OpenStdin: inst.attach.stdin,
    OpenStderr: inst.attach.stderr,
    OpenStdout: inst.attach.stdout,
    CanRemove: false,
    ContainerID: inst.containerId,
    DetachKeys: '',
    // The Engine's foreground exec does not report the process's pid.
    Pid: 0,
  };
}

function writeText(out: Writable, text: string): Promise<void> {
  return new Promise((resolve) => out.write(text, () => resolve()));
}
