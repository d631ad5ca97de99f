import { describe, expect, it } from 'vitest';
import { CommandError, run } from './exec.js';

describe('run', () => {
  it('returns stdout and stderr and feeds input', async () => {
    expect((await run('sh', ['-c', 'cat; echo e >&2'], { input: 'in' })).stdout).toBe('in');
  });
  it('throws a CommandError with the exit code and stderr', async () => {
    const err = await run('sh', ['-c', 'echo boom >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).commandExitCode).toBe(3);
    expect((err as CommandError).message).toMatch(/exited with 3: boom/);
  });
  it('kills a command that runs past its timeout', async () => {
    const err = (await run('sleep', ['5'], { timeout: 100 }).catch((e: unknown) => e)) as CommandError;
    expect(err.timedOut).toBe(true);
    expect(err.message).toMatch(/timed out/);
  });
  it('lets the caller call a failure "already gone"', async () => {
    const err = (await run('sh', ['-c', 'echo "No such device" >&2; exit 1'], { alreadyGone: (s) => s.includes('No such') }).catch((e: unknown) => e)) as CommandError;
    expect(err.alreadyGone).toBe(true);
  });
  it('returns when a command exits while a daemonized child still holds its output', async () => {
    const res = await run('sh', ['-c', 'echo parent; (sleep 3 &) ; exit 0'], { timeout: 2000 });
    expect(res.stdout).toBe('parent\n');
  });
  it('names a missing program', async () => {
    await expect(run('/no/such/program', [])).rejects.toThrow(/not found/);
  });
});
