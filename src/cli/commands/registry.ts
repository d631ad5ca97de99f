import type { Context } from '../command.js';
import type { EngineApi, TransferEvent } from '../../api/types.js';
import { defineCommand, type Command } from '../command.js';
import { layerRenderer } from '../progress.js';

const TLS_OPTION = { name: 'tls-verify', type: 'bool', default: true, help: 'Require HTTPS and verify certificates when talking to the registry (default true)' } as const;

/** Docker adds `:latest` to a reference with neither tag nor digest, and says so. */
export function hasTagOrDigest(ref: string): boolean {
  return ref.includes('@') || ref.lastIndexOf(':') > ref.lastIndexOf('/');
}

/** A reference's tag (or digest) and repository path as docker's "latest: Pulling from library/busybox" shows them. */
function pullingLine(reference: string, registry: string): string {
  const at = reference.lastIndexOf('@');
  const split = at >= 0 ? at : reference.lastIndexOf(':');
  const name = reference.slice(0, split);
  const tag = reference.slice(split + 1);
  const repo = name.startsWith(`${registry}/`) ? name.slice(registry.length + 1) : name;
  return `${tag}: Pulling from ${repo}`;
}

/**
 * Pull progress as `docker pull` prints it on `out` (stdout for pull, stderr for run's pull): per-tag
 * header, layers, digest and status. `shortName` is how the user wrote the reference, for the status line.
 */
export function pullPrinter(out: Context['stdout'] | Context['stderr'], shortName: string): (e: TransferEvent) => void {
  let layers: ((e: TransferEvent) => void) | undefined;
  const tty = !!(out as { isTTY?: boolean }).isTTY;
  return (e) => {
    switch (e.type) {
      case 'resolving':
        out.write(`${pullingLine(e.reference, e.registry)}\n`);
        layers = layerRenderer(out, { tty, kind: 'pull' });
        return;
      case 'layer':
        layers?.(e);
        return;
      case 'done': {
        const tagged = hasTagOrDigest(shortName) ? shortName : `${shortName}:latest`;
        out.write(`Digest: ${e.digest}\n`);
        out.write(`Status: ${e.changed ? 'Downloaded newer image' : 'Image is up to date'} for ${e.reference.includes('@') ? shortName : tagged}\n`);
        return;
      }
      default:
    }
  };
}

/** The pull that `run`/`create` start for a missing image: Docker's words on stderr. */
export function runPullPrinter(ctx: Context, image: string): (e: TransferEvent) => void {
  let started = false;
  const print = pullPrinter(ctx.stderr, image);
  return (e) => {
    if (!started) {
      started = true;
      ctx.stderr.write(`Unable to find image '${hasTagOrDigest(image) ? image : `${image}:latest`}' locally\n`);
    }
    print(e);
  };
}

const pull = defineCommand({
  name: 'pull', group: 'image', shortcuts: ['pull'],
  usage: '[OPTIONS] NAME[:TAG|@DIGEST]', summary: 'Download an image from a registry',
  options: [
    { name: 'all-tags', short: 'a', type: 'bool', help: 'Download all tagged images in the repository' },
    { name: 'platform', type: 'string', help: 'Set platform if server is multi-platform capable (os/arch[/variant])' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' },
    TLS_OPTION,
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    const engine: EngineApi = await ctx.engine();
    if (!o.quiet && !o.allTags && !hasTagOrDigest(ref!)) ctx.print('Using default tag: latest');
    const finals: string[] = [];
    const printer = o.quiet ? () => {} : pullPrinter(ctx.stdout, ref!);
    const res = await engine.images.pull(ref!, {
      allTags: o.allTags, platform: o.platform, tlsVerify: o.tlsVerify,
      onProgress: (e) => {
        if (e.type === 'done') finals.push(e.reference);
        printer(e);
      },
    });
    ctx.print(o.allTags ? res.reference : finals.at(-1) ?? res.reference);
  },
});

const push = defineCommand({
  name: 'push', group: 'image', shortcuts: ['push'],
  usage: '[OPTIONS] NAME[:TAG]', summary: 'Upload an image to a registry',
  options: [
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress verbose output' },
    TLS_OPTION,
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [ref]) {
    const engine = await ctx.engine();
    const layers = layerRenderer(ctx.stdout, { tty: !!ctx.stdout.isTTY, kind: 'push' });
    const res = await engine.images.push(ref!, {
      tlsVerify: o.tlsVerify,
      onProgress: o.quiet ? undefined : (e) => {
        if (e.type === 'resolving') ctx.print(`The push refers to repository [${e.reference.slice(0, e.reference.lastIndexOf(':'))}]`);
        else if (e.type === 'layer') layers(e);
      },
    });
    if (o.quiet) return ctx.print(res.reference);
    ctx.print(`${res.reference.slice(res.reference.lastIndexOf(':') + 1)}: digest: ${res.digest} size: ${res.size}`);
  },
});

export const pullPushCommands: Command[] = [pull, push];
