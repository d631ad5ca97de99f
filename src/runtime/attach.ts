/**
 * Attaching to a container's stdio.
 *
 * conmon's attach socket (`<bundle>/attach`, with --full-attach) is SOCK_SEQPACKET, which Node's net
 * module cannot open. So:
 *  - stdin goes through socat (`UNIX-CONNECT:attach,type=5`): Node pipes the user's stdin into socat,
 *    socat sends it to conmon, which writes it to the container. When the user's stdin ends, socat
 *    shuts down its side, and conmon closes the container's stdin (we do not pass --leave-stdin-open),
 *    so `echo hi | berth run -i IMG cat` ends as it does with Docker.
 *  - output is read from the k8s-file log, which conmon writes before anything else sees the data.
 *    The socket also carries output (one stream byte, then data, per packet); socat's own stdout
 *    would lose the packet framing, so socat's output goes to /dev/null. socat must still read it:
 *    conmon writes to attached clients with blocking writes, and a client that never reads would
 *    stall the container's output once the socket buffer filled.
 * socat connects relative to the bundle (cwd), so the 108-byte limit on socket paths does not apply.
 * socat is spawned directly, not through util/exec's run(): it is a stream pump that lives as long as
 * the attach, so it has no timeout; it is stopped when the container has exited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { StdioStreams, TerminalSize } from '../types.js';
import { readLog } from './logs.js';

export interface AttachIo extends StdioStreams {
  logPath: string;
  tty: boolean;
  /** Show only output written from now on (docker attach); default: the log from its start (run). */
  fromEnd?: boolean;
  /** Where "now" is, in bytes of the log, when the caller fixed it before acting (see Monitor.attach). */
  fromOffset?: number;
}

/**
 * Streams the container's output from its log and feeds `io.stdin` to it until `stopWhen()` says the
 * container is done. `bundle` is where conmon put the attach socket; undefined means stdin is not fed.
 */
export async function attachContainer(bundle: string | undefined, socatPath: string, io: AttachIo, stopWhen: () => Promise<boolean>): Promise<void> {
  const pump = io.stdin && bundle ? startStdinPump(bundle, socatPath, io.stdin) : undefined;
  const ac = new AbortController();
  try {
    for await (const e of readLog(io.logPath, { follow: true, stopWhen, signal: ac.signal, from: io.fromOffset ?? (io.fromEnd ? 'end' : 0) })) {
      // With a terminal, conmon logs everything as stdout; the line keeps its \r.
      const out = e.stream === 'stderr' && !io.tty ? io.stderr : io.stdout;
      if (!out) continue;
      const text = e.partial ? e.line : e.line + '\n';
      if (!out.write(text)) await waitDrain(out);
    }
  } finally {
    pump?.stop();
  }
}

interface StdinPump {
  stop(): void;
}

function startStdinPump(bundle: string, socatPath: string, stdin: Readable): StdinPump {
  const child: ChildProcess = spawn(socatPath, ['-t', '1', 'STDIN', 'UNIX-CONNECT:attach,type=5'], {
    cwd: bundle,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {});
  child.stdin!.on('error', () => {});
  stdin.pipe(child.stdin!);
  return {
    stop() {
      stdin.unpipe(child.stdin!);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

function waitDrain(out: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.once('drain', done);
    out.once('close', done);
    out.once('error', done);
  });
}

/**
 * conmon's control fifo: "1 <height> <width>\n" resizes the container's terminal (WIN_RESIZE_EVENT).
 * Writes for one bundle go one after another, each with the size last asked for: two followers of one
 * terminal (an attach and a start, two attaches) each serialize their own changes, but their writes, made
 * on the thread pool, could otherwise land out of order and leave the container at an older size.
 */
export function resizeTerminal(bundle: string, size: TerminalSize): Promise<void> {
  const slot = ctlWrites.get(bundle) ?? { latest: size, chain: Promise.resolve() };
  slot.latest = size;
  const next = slot.chain.catch(() => undefined).then(() => writeCtlSize(bundle, slot.latest));
  slot.chain = next;
  ctlWrites.set(bundle, slot);
  void next.catch(() => undefined).finally(() => {
    if (slot.chain === next) ctlWrites.delete(bundle);
  });
  return next;
}

const ctlWrites = new Map<string, { latest: TerminalSize; chain: Promise<void> }>();

async function writeCtlSize(bundle: string, size: TerminalSize): Promise<void> {
  // O_NONBLOCK: opening a fifo for writing with no reader (conmon gone) must fail, not hang.
  const fh = await fsp.open(path.join(bundle, 'ctl'), fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  try {
    await fh.write(`1 ${Math.max(1, Math.floor(size.rows))} ${Math.max(1, Math.floor(size.columns))}\n`);
  } finally {
    await fh.close();
  }
}
