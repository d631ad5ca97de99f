/**
 * What `machine create` and `upgrade` copy: this Berth's *built tree*, not what `npm pack` makes. The
 * package npm would pack holds the TypeScript sources and no node_modules, so the remote would need a
 * package source for `npm install` and the dev tools (tsc, esbuild) for `npm run build`; a machine is often
 * a host with no route to a registry. The built tree runs as it is: bin/, dist/cli/ (the bundled CLI and
 * engine: bin/berth.js loads nothing else), scripts/setup.sh (the remote's set-up), package.json, and the
 * runtime dependencies' folders from node_modules (the closure of package.json's `dependencies`, resolved
 * as Node resolves them; no dev dependencies). `.berth-built` marks it so setup.sh skips npm and the build.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadStateError } from '../errors.js';

export interface BuiltTree {
  /** the package folder the paths are relative to */
  root: string;
  /** paths to copy, relative to root */
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

/** Node's resolution of `name` from `fromDir`: the nearest node_modules/name above it. */
function resolvePackage(name: string, fromDir: string, root: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || path.dirname(dir) === dir) return undefined;
    dir = path.dirname(dir);
  }
}

/** The runtime dependencies' folders, relative to root; a nested one is inside its parent's folder. */
export function runtimeModules(root: string): string[] {
  const found = new Set<string>();
  const missing: string[] = [];
  const visit = (pkgDir: string) => {
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    for (const name of Object.keys(pkg.dependencies ?? {})) {
      const dep = resolvePackage(name, pkgDir, root);
      if (!dep) {
        if (!(name in (pkg.optionalDependencies ?? {}))) missing.push(`${name} (for ${path.relative(root, pkgDir) || 'berth'})`);
        continue;
      }
      const rel = path.relative(root, dep);
      if (found.has(rel)) continue;
      found.add(rel);
      visit(dep);
    }
  };
  visit(root);
  if (missing.length) throw new BadStateError(`this Berth's node_modules lacks ${missing.join(', ')}`, `run "npm install" in ${root}, then try again`);
  const all = [...found].sort();
  // A package nested in another's node_modules travels with its parent.
  return all.filter((p) => !all.some((q) => q !== p && p.startsWith(q + path.sep)));
}

export function builtTree(root: string = packageRoot()): BuiltTree {
  const main = path.join(root, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new BadStateError(`this Berth is not built (${main} is missing)`, `run "npm run build" in ${root}, then try again`);
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return {
    root,
    paths: ['package.json', 'bin', 'dist/cli', 'scripts/setup.sh', ...(existsSync(path.join(root, 'README.md')) ? ['README.md'] : []), ...runtimeModules(root)],
    version,
    marker: `berth ${version} from ${root}`,
  };
}
