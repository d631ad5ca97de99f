import { describe, expect, it } from 'vitest';
import { BadStateError, CannotInvokeError, CommandNotFoundError, NotFoundError, RuntimeError } from '../errors.js';
import { exitCodeFor } from './exit.js';
import { UsageError } from './parser.js';

describe('exit codes', () => {
  it('run and create: 125 for engine failures, 126/127 for the command', () => {
    for (const cmd of ['run', 'create']) {
      expect(exitCodeFor(new NotFoundError('image', 'nope'), cmd)).toBe(125);
      expect(exitCodeFor(new RuntimeError('runc failed', 'see logs'), cmd)).toBe(125);
      expect(exitCodeFor(new Error('unexpected'), cmd)).toBe(125);
      expect(exitCodeFor(new CannotInvokeError('/etc', 'is a directory'), cmd)).toBe(126);
      expect(exitCodeFor(new CommandNotFoundError('nope'), cmd)).toBe(127);
    }
  });

  it('exec: 126/127 for the command, 1 otherwise', () => {
    expect(exitCodeFor(new CommandNotFoundError('nope'), 'exec')).toBe(127);
    expect(exitCodeFor(new CannotInvokeError('/etc', 'is a directory'), 'exec')).toBe(126);
    expect(exitCodeFor(new BadStateError('not running', 'start it'), 'exec')).toBe(1);
  });

  it('other commands: 1', () => {
    expect(exitCodeFor(new NotFoundError('container', 'x'), 'rm')).toBe(1);
    expect(exitCodeFor(new CommandNotFoundError('x'), 'start')).toBe(1);
    expect(exitCodeFor(new Error('boom'), 'ps')).toBe(1);
    expect(exitCodeFor(new Error('boom'), undefined)).toBe(1);
  });

  it('usage errors keep their own code', () => {
    expect(exitCodeFor(new UsageError('unknown flag: --x'), 'ps')).toBe(125);
    expect(exitCodeFor(new UsageError('"berth rm" requires at least 1 argument.', 1), 'rm')).toBe(1);
  });
});
