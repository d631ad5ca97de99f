import path from 'node:path';
import { buildLine } from '../../build/progress.js';
import { InvalidArgumentError } from '../../errors.js';
import { type Command, defineCommand, interruptible } from '../command.js';

const NETWORKS = ['none', 'host', 'bridge', 'default'] as const;

const build = defineCommand({
  name: 'build', group: 'image', shortcuts: ['build'],
  usage: '[OPTIONS] PATH | -', summary: 'Build an image from a Dockerfile',
  options: [
    { name: 'tag', short: 't', type: 'list', help: 'Name and optionally a tag in the "name:tag" format' },
    { name: 'file', short: 'f', type: 'string', help: "Name of the Dockerfile (default: 'PATH/Dockerfile'); '-' reads it from stdin" },
    { name: 'build-arg', type: 'map', help: 'Set build-time variables' },
    { name: 'target', type: 'string', help: 'Set the target build stage to build' },
    { name: 'no-cache', type: 'bool', help: 'Do not use cache when building the image' },
    { name: 'pull', type: 'bool', help: 'Always attempt to pull a newer version of the image' },
    { name: 'network', type: 'string', help: 'Set the networking mode for the RUN instructions during build (none, host, bridge)' },
    { name: 'label', type: 'map', help: 'Set metadata for an image' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress the build output and print image ID on success' },
    { name: 'iidfile', type: 'string', help: 'Write the image ID to the file' },
    { name: 'platform', type: 'string', help: "Set platform (only the host's own is built)" },
    { name: 'secret', type: 'list', help: 'Secret file to expose to the build (id=ID,src=FILE)' },
  ],
  minArgs: 1, maxArgs: 1,
  async action(ctx, o, [context]) {
    const network = o.network;
    if (network !== undefined && !(NETWORKS as readonly string[]).includes(network)) {
      throw new InvalidArgumentError('--network', `"${network}" is not none, host or bridge`, 'builds run RUN steps on none, host or the default bridge');
    }
    const secrets = o.secret.map(parseSecretFlag);
    if (context === '-' && o.file === '-') throw new InvalidArgumentError('--file', 'the context and the Dockerfile cannot both come from stdin', 'give the context as a folder');
    let dockerfile: string | { text: string } | undefined;
    if (o.file === '-') {
      const chunks: Buffer[] = [];
      for await (const c of ctx.stdin) chunks.push(Buffer.from(c as Buffer));
      dockerfile = { text: Buffer.concat(chunks).toString('utf8') };
    } else if (o.file !== undefined) {
      // As docker: -f is relative to the working folder, not to the context; with a tar on stdin it names
      // a file inside the tar.
      dockerfile = context === '-' ? o.file : path.resolve(o.file);
    }
    const engine = await ctx.engine();
    // Ctrl-C or a kill stops the build: a RUN's container is killed and removed.
    const out = await interruptible(ctx, (signal) => engine.images.build({
      context: context === '-' ? ctx.stdin : context!,
      dockerfile,
      tags: o.tag,
      buildArgs: o.buildArg,
      target: o.target,
      noCache: o.noCache,
      pull: o.pull,
      network: network === 'default' ? 'bridge' : (network as 'none' | 'host' | 'bridge' | undefined),
      labels: o.label,
      iidfile: o.iidfile !== undefined ? path.resolve(o.iidfile) : undefined,
      platform: o.platform,
      secrets,
      signal,
      onProgress: o.quiet ? undefined : (e) => {
        const line = buildLine(e);
        if (line !== undefined) ctx.print(line);
      },
    }));
    if ('exitCode' in out) return out.exitCode;
    if (o.quiet) ctx.print(out.value.id);
  },
});

/** `--secret id=ID,src=FILE` (also `source=` and `type=file`, as Docker takes them). */
export function parseSecretFlag(spec: string): { id: string; src: string } {
  const f: Record<string, string> = {};
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError('--secret', `"${spec}" is not id=ID,src=FILE`, 'e.g. --secret id=npmrc,src=$HOME/.npmrc');
    const key = field.slice(0, eq).toLowerCase();
    f[key === 'source' ? 'src' : key] = field.slice(eq + 1);
  }
  if (f.type !== undefined && f.type !== 'file') throw new InvalidArgumentError('--secret', `type=${f.type} is not supported yet`, 'give the secret as a file: type=file or no type');
  if (f.env !== undefined) throw new InvalidArgumentError('--secret', 'a secret from an environment variable (env=) is not supported yet', 'write it to a file and give src=FILE');
  const bad = Object.keys(f).find((k) => !['id', 'src', 'type'].includes(k));
  if (bad) throw new InvalidArgumentError('--secret', `unknown key "${bad}" in "${spec}"`, 'keys: id, src, type');
  if (!f.id || !f.src) throw new InvalidArgumentError('--secret', `"${spec}" needs both id= and src=`, 'e.g. --secret id=npmrc,src=$HOME/.npmrc');
  return { id: f.id, src: path.resolve(f.src) };
}

export const buildCommands: readonly Command[] = [build];
