#!/usr/bin/env -S node --
// `--`: Node 20's launcher takes `--env-file` from anywhere in argv, even after the script name; after `--`
// it leaves every argument to us, so `berth run IMG echo --env-file x` reaches the container untouched.
// The bundled CLI (scripts/bundle-cli.mjs): same code as dist/src/cli, loaded in one go.
import { main } from '../dist/cli/main.js';

// A reader that goes away (`berth logs -f | head`) ends the command quietly, as with docker.
process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));

const code = await main(process.argv.slice(2));
// Exit once stdout has drained: a stdin left open by an attached command must not keep us alive.
process.exitCode = code;
process.stdout.write('', () => process.exit(code));
