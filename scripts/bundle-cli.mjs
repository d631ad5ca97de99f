// Bundles the CLI and the engine it lazy-loads into a few ESM files (dist/cli/), run by `npm run build`.
// Node resolves ~100 small modules in ~35 ms; one bundle loads in a few. `--version` stays cheap because
// the engine is a separate chunk that only commands needing it import. Packages stay external.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names carry a content hash: without this, every build would leave the last build's chunks behind.
rmSync('dist/cli', { recursive: true, force: true });
await build({
  // The layer unpack thread's entry (src/storage/unpack-thread.ts loads it from beside its chunk).
  entryPoints: { main: 'dist/src/cli/main.js', 'unpack-worker': 'dist/src/storage/unpack-worker.js' },
  outdir: 'dist/cli',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});
