// Loads the bundled CLI (dist/cli/main.cjs, made by scripts/bundle-cli.mjs) with a V8 code cache.
//
// Node 20 has no compile cache for modules (module.enableCompileCache is Node 22's), so the bundle is one
// CommonJS file compiled through vm.Script, which takes and makes V8 code caches. Parsing and compiling
// the bundle is otherwise the largest part of a command's own start-up.
//
// V8 caches what has been compiled when the cache is made, so a cache made after `--version` holds little
// of what `run` needs. The cache file therefore lists the commands whose code it holds; the first time a
// command not on the list runs, the cache is made again after it (holding the old list's code too, since
// that was loaded from the cache). A few commands in, it holds what the user runs, and is no longer written.
//
// The cache is an optimization only: one V8 rejects (another node, other flags, a rebuilt bundle) or that
// cannot be read or written is ignored, and the command runs from the source. A cache is executable code,
// so it is read only when the bundle's owner wrote it and nobody else can write it.
import { closeSync, fstatSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const BUNDLE = fileURLToPath(new URL('../dist/cli/main.cjs', import.meta.url));
const CACHE = `${BUNDLE}.cache`;
const MAX_COMMANDS = 64;

/** The command's first word (`run`, `network`, ...): global options' values are paths or URIs, not words. */
export function commandWord(argv) {
  return argv.find((a) => /^[a-z][a-z0-9-]*$/.test(a)) ?? '';
}

/** `{ commands, data }` of the cache file, or undefined when there is none that may be used. */
function readCache(owner) {
  let fd;
  try {
    fd = openSync(CACHE, 'r');
    const st = fstatSync(fd);
    if (st.uid !== owner || (st.mode & 0o022) !== 0) return undefined;
    const buf = readFileSync(fd);
    const nl = buf.indexOf(10);
    if (nl < 0) return undefined;
    const head = JSON.parse(buf.subarray(0, nl).toString('utf8'));
    if (!Array.isArray(head.commands)) return undefined;
    return { commands: head.commands.filter((c) => typeof c === 'string'), data: buf.subarray(nl + 1) };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeCache(script, commands) {
  const tmp = `${CACHE}.${process.pid}.tmp`;
  try {
    const head = Buffer.from(`${JSON.stringify({ commands })}\n`);
    writeFileSync(tmp, Buffer.concat([head, script.createCachedData()]), { mode: 0o644 });
    renameSync(tmp, CACHE);
  } catch {
    // Not ours to write (a package installed by root, a read-only tree): run without a cache.
    try { unlinkSync(tmp); } catch { /* never made */ }
  }
}

/** The CLI's `main`, and `done()` to call once it returned (it may write the cache). */
export function loadCli(argv) {
  const owner = statSync(BUNDLE).uid;
  const mayWrite = process.getuid?.() === owner;
  const cache = readCache(owner);
  const source = readFileSync(BUNDLE, 'utf8');
  // Module.wrap's shape: the bundle is an ordinary CommonJS module with its own require.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const script = new vm.Script(wrapped, { filename: BUNDLE, ...(cache ? { cachedData: cache.data } : {}) });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, path.dirname(BUNDLE));
  const word = commandWord(argv);
  const fresh = !cache || script.cachedDataRejected === true;
  const known = fresh ? [] : cache.commands;
  const done = () => {
    if (!mayWrite || (!fresh && (known.includes(word) || known.length >= MAX_COMMANDS))) return;
    writeCache(script, [...known, word]);
  };
  return { main: module.exports.main, done };
}
