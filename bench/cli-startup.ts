import { BerthRoot } from './berth.js';
import { type Benchmark, measure, Report, sh } from './lib.js';

/** `berth --version` and `berth images` (empty root) against a bare `node -e 0`. */
export const cliStartup: Benchmark = {
  name: 'cli-startup',
  title: 'berth --version / berth images (empty root) vs node -e 0',
  defaultRuns: 15,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const opts = { runs: ctx.runs, warmup: 2 };
    await measure(report, 'node -e 0', 'reference', opts, async () => { await sh(process.execPath, ['-e', '0']); });
    const berth = await BerthRoot.create('cli');
    try {
      await measure(report, 'berth --version', 'berth', opts, async () => { await berth.cli(['--version']); });
      await measure(report, 'berth images', 'berth', opts, async () => { await berth.cli(['images']); });
    } finally {
      await berth.cleanup();
    }
    report.target('--version adds <= 60 ms over node -e 0', () => report.median('berth --version') - report.median('node -e 0'), '<=', 60, 'ms');
    report.note('"berth images" has no target: it shows what opening an empty store costs');
    return report;
  },
};
