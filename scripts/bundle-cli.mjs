// Bundles the CLI, the engine and the packages they use into one CommonJS file, dist/cli/main.cjs, run by
// `npm run build`. bin/berth.js compiles it with a V8 code cache beside it (main.cjs.cache): a command then
// skips parsing and compiling ~2 MB of JavaScript, the largest piece of every command's start-up after
// node's own (measured: `run --rm` -40 ms of CPU, `ps` -30 ms, against ESM chunks without a cache).
// CommonJS because Node 20 can give a code cache only to a vm.Script; ESM modules have no such hook.
// Modules reached by dynamic import() (the builder, the API server) are still only run when needed.
import { rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/cli', { recursive: true, force: true });
// import.meta.url is how modules find what lies beside them (bin/berth.js for the exit hook, the unpack
// worker): in the bundle it is the bundle's own URL.
writeFileSync('dist/.meta-url.js', "export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;\n");
const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };
try {
  await build({
    ...common,
    entryPoints: { main: 'dist/src/cli/main.js' },
    outdir: 'dist/cli',
    outExtension: { '.js': '.cjs' },
    format: 'cjs',
    define: { 'import.meta.url': 'importMetaUrl' },
    inject: ['dist/.meta-url.js'],
  });
} finally {
  rmSync('dist/.meta-url.js', { force: true });
}
// The layer unpack thread's entry (src/storage/unpack-thread.ts loads it from beside the bundle).
await build({
  ...common,
  entryPoints: { 'unpack-worker': 'dist/src/storage/unpack-worker.js' },
  outdir: 'dist/cli',
  format: 'esm',
  // CommonJS packages (tar-stream) call require() for node's own modules; ESM has none.
  banner: { js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);" },
});

// koffi's native module (src/util/syscalls.ts: mount(2) without forking mount(8)) travels beside the bundle,
// which carries no node_modules. Without it Berth still works, through mount(8).
{
  const { copyFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const triple = `${process.platform}_${process.arch}`;
  try {
    copyFileSync(createRequire(import.meta.url).resolve(`@koromix/koffi-${process.platform}-${process.arch}/${triple}/koffi.node`), 'dist/cli/koffi.node');
  } catch (err) {
    console.warn(`bundle-cli: no koffi module for ${triple} (${err.message.split('\n')[0]}): mounts will run mount(8)`);
  }
}
