#!/usr/bin/env -S node --
// `--`: Node 20's launcher takes `--env-file` from anywhere in argv, even after the script name; after `--`
// it leaves every argument to us, so `berth run IMG echo --env-file x` reaches the container untouched.
import { loadCli } from './load-cli.js';

const { main, done } = loadCli(process.argv.slice(2));

// A reader that goes away (`berth logs -f | head`) ends the command quietly, as with docker.
process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));

const code = await main(process.argv.slice(2));
done();
// Exit once stdout has drained: a stdin left open by an attached command must not keep us alive.
process.exitCode = code;
process.stdout.write('', () => process.exit(code));
