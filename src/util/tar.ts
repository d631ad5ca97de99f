import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import tarStream from 'tar-stream';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RuntimeError } from '../errors.js';

/**
 * GNU tar as a stream stage, for the copies whose throughput is tar's own (cp, volume export/import).
 * Not timed: a copy runs as long as its data does, and a stage is killed when the other side fails.
 */
export interface TarStage {
  child: ChildProcess;
  /** settles with tar's stderr (its warnings), or rejects with it when tar fails */
  done: Promise<string>;
}

/**
 * Node drains (and drops) a child's unread stdout once it exits: pipe a reader's stdout with no await
 * between. With a stage as `stdin`, that stage's stdout becomes this one's stdin directly (no copy
 * through node), and this process lets go of it.
 */
export function spawnTar(argv: readonly string[], stdin: 'pipe' | 'ignore' | TarStage, file = 'tar'): TarStage {
  const from = typeof stdin === 'string' ? stdin : stdin.child.stdout!;
  const child = spawn(file, argv, { stdio: [from, 'pipe', 'pipe'] });
  // The pipe now belongs to the two children; a copy left open here would be read once the reader exits.
  if (typeof stdin !== 'string') stdin.child.stdout!.destroy();
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => (code === 0 ? resolve(stderr) : reject(new RuntimeError(`tar ${signal ? `was killed by ${signal}` : `exited with ${code}`}: ${stderr.trim().split('\n').slice(-4).join(' | ') || 'no output'}`,
      'the archive or a path in it was refused; see the message'))));
  });
  return { child, done };
}

/**
 * tar -x into `dir` through a private bind mount of it with `nosymfollow` (Linux 5.10): no link under
 * `dir`, already there or made by the archive, is followed while tar writes, so nothing lands outside.
 * tar itself refuses members with `..`.
 */
export function extractNoFollow(dir: string, tarArgs: readonly string[], stdin: 'pipe' | TarStage = 'pipe'): TarStage {
  const script = 'mount --bind -- "$1" "$1" && mount -o remount,bind,nosymfollow -- "$1" && shift && exec tar "$@"';
  return spawnTar(['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'berth-tar', dir, '-x', '-f', '-', '-C', dir, ...tarArgs], stdin, 'unshare');
}

/** Waits on a reader piped straight into a writer; the archive's size is the reader's `--totals`. */
export async function joinTars(reader: TarStage, writer: TarStage): Promise<{ bytes: number; warnings: string[] }> {
  try {
    const [read, written] = await Promise.all([reader.done, writer.done]);
    const total = /^Total bytes written: (\d+)/m.exec(read);
    return { bytes: total ? Number(total[1]) : 0, warnings: tarWarnings(written) };
  } catch (err) {
    for (const s of [reader, writer]) s.child.kill('SIGKILL');
    await Promise.allSettled([reader.done, writer.done]);
    throw err;
  }
}

/** Pipes `src` into a tar stage's stdin or a stream (left open: it may be stdout), waiting on every stage; returns the bytes. */
export async function pumpTar(src: Readable, dest: Writable | TarStage, stages: readonly TarStage[]): Promise<number> {
  let bytes = 0;
  const count = new Transform({ transform(chunk: Buffer, _e, cb) { bytes += chunk.length; cb(null, chunk); } });
  const toChild = 'child' in dest;
  const flowing = pipeline(src, count, toChild ? dest.child.stdin! : dest, { end: toChild });
  try {
    await Promise.all([flowing, ...stages.map((s) => s.done)]);
  } catch (err) {
    src.destroy();
    for (const s of stages) s.child.kill('SIGKILL');
    await Promise.allSettled([flowing, ...stages.map((s) => s.done)]);
    throw err;
  }
  return bytes;
}

export function tarWarnings(stderr: string): string[] {
  return stderr.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Files up to this size are read whole into a tar entry; bigger ones are streamed. */
const SMALL_ENTRY = 64 * 1024;

/**
 * A regular file's bytes into a tar-stream entry (`header` with its size). A read stream allocates its
 * highWaterMark (1 MiB here) for every file, however small: for thousands of small files (a build's
 * COPY, a layer's diff) that was gigabytes of garbage and seconds of GC. Small files are read in one call.
 */
export function packFile(pack: TarPack, header: TarPackHeader & { size: number }, file: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (header.size <= SMALL_ENTRY) {
      let body: Buffer;
      try {
        body = readFileSync(file);
      } catch (err) {
        reject(err as Error);
        return;
      }
      pack.entry({ ...header, type: 'file', size: body.length }, body, done);
      return;
    }
    const sink = pack.entry({ ...header, type: 'file' }, done);
    const src = createReadStream(file, { highWaterMark: 1 << 20 });
    src.on('error', reject);
    src.pipe(sink);
  });
}

type TarPack = ReturnType<typeof tarStream.pack>;
type TarPackHeader = Parameters<TarPack['entry']>[0];
