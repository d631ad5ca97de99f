/**
 * What `machine create` and `upgrade` copy: this Berth's *built tree*, not what `npm pack` makes. The
 * package npm would pack holds the TypeScript sources and no node_modules, so the remote would need a
 * package source for `npm install` and the dev tools (tsc, esbuild) for `npm run build`; a machine is often
 * a host with no route to a registry. The built tree runs as it is: bin/, dist/cli/ (the bundled CLI and
 * engine with every package it uses: bin/berth.js loads nothing else, so no node_modules travels),
 * scripts/setup.sh (the remote's set-up) and package.json. `.berth-built` marks it so setup.sh skips npm
 * and the build.
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadStateError } from '../errors.js';

export interface BuiltTree {
  /** the package folder the paths are relative to */
  root: string;
  /**
   * the files to copy, relative to root, listed one by one. tar is given this list with --no-recursion: a
   * directory tar walked itself would be "changed as we read it" (exit 1) whenever a berth command running
   * meanwhile rewrites the CLI's code cache next to the bundle, and the cache is this machine's anyway.
   */
  paths: string[];
  version: string;
  /** the marker's text: version and where it was copied from */
  marker: string;
}

/** The package folder this module runs from (dist/cli/… or src/machine/… in tests). */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = path.dirname(from);
  while (!existsSync(path.join(dir, 'bin', 'berth.js')) || !existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new BadStateError(`cannot find this Berth's package folder above ${from}`, 'run berth from its package (bin/berth.js)');
    dir = up;
  }
  return dir;
}

export function builtTree(root: string = packageRoot()): BuiltTree {
  const main = path.join(root, 'dist', 'cli', 'main.cjs');
  if (!existsSync(main)) throw new BadStateError(`this Berth is not built (${main} is missing)`, `run "npm run build" in ${root}, then try again`);
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return {
    root,
    paths: ['package.json', 'bin', 'dist/cli', 'scripts/setup.sh', ...(existsSync(path.join(root, 'README.md')) ? ['README.md'] : [])]
      .flatMap((p) => filesUnder(root, p)),
    version,
    marker: `berth ${version} from ${root}`,
  };
}

/** Files and links at or under `rel`, without the code cache (bin/load-cli.js's main.cjs.cache and its temporaries). */
function filesUnder(root: string, rel: string): string[] {
  if (!lstatSync(path.join(root, rel)).isDirectory()) return /^main\.cjs\.cache/.test(path.basename(rel)) ? [] : [rel];
  return readdirSync(path.join(root, rel)).sort().flatMap((name) => filesUnder(root, path.join(rel, name)));
}
