#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
// Exit once stdout has drained: a stdin left open by an attached command must not keep us alive.
process.exitCode = code;
process.stdout.write('', () => process.exit(code));
