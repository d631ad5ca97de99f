import { describe, expect, it } from 'vitest';
import { parseSignal } from './signals.js';

describe('parseSignal', () => {
  it('accepts names with or without SIG, any case, and numbers', () => {
    expect(parseSignal('s', 'SIGTERM')).toEqual({ name: 'SIGTERM', number: 15 });
    expect(parseSignal('s', 'term')).toEqual({ name: 'SIGTERM', number: 15 });
    expect(parseSignal('s', '9')).toEqual({ name: 'SIGKILL', number: 9 });
    expect(parseSignal('s', 'SIGIOT').name).toBe('SIGABRT');
    expect(parseSignal('s', 'RTMIN+3')).toEqual({ name: 'SIGRTMIN+3', number: 37 });
    expect(parseSignal('s', 'SIGRTMAX')).toEqual({ name: 'SIGRTMIN+30', number: 64 });
  });

  it('refuses unknown names and numbers out of range, naming the flag', () => {
    expect(() => parseSignal('--stop-signal', 'SIGFOO')).toThrow('invalid --stop-signal: invalid signal: SIGFOO');
    expect(() => parseSignal('--stop-signal', '0')).toThrow('--stop-signal');
    expect(() => parseSignal('--stop-signal', '65')).toThrow('--stop-signal');
    expect(() => parseSignal('--stop-signal', 'RTMAX+1')).toThrow('--stop-signal');
  });
});
