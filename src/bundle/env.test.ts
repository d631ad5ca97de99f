import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { checkEnv, mergeEnv, parseEnvFile } from './env.js';

describe('mergeEnv', () => {
  it('replaces in place, appends new names, and removes bare names', () => {
    expect(mergeEnv(['A=1', 'B=2', 'C=3'], ['B=two', 'D=4', 'A'])).toEqual(['B=two', 'C=3', 'D=4']);
  });

  it('keeps values that contain =', () => {
    expect(mergeEnv([], ['URL=a=b'])).toEqual(['URL=a=b']);
  });
});

describe('checkEnv', () => {
  it('refuses an empty name or a name with spaces', () => {
    expect(() => checkEnv('--env', ['=x'])).toThrow(InvalidArgumentError);
    expect(() => checkEnv('--env', ['MY VAR=1'])).toThrow("variable 'MY VAR' contains whitespaces");
    expect(() => checkEnv('--env', ['OK=1', 'BARE'])).not.toThrow();
  });
});

describe('parseEnvFile', () => {
  it('reads NAME=VALUE lines literally, skipping blanks and comments', () => {
    const text = '\uFEFF# settings\nA=1\n\n  B="quoted" \nC=x=y\r\n#D=4\n';
    expect(parseEnvFile(text)).toEqual(['A=1', 'B="quoted" ', 'C=x=y']);
  });

  it('fills a bare name from the lookup, and drops it when unset', () => {
    expect(parseEnvFile('HOME\nNOPE\n', (n) => (n === 'HOME' ? '/home/me' : undefined))).toEqual(['HOME=/home/me']);
  });

  it('names the line of a bad variable', () => {
    expect(() => parseEnvFile('A=1\nBAD NAME=2\n')).toThrow("--env-file: line 2: variable 'BAD NAME' contains whitespaces");
    expect(() => parseEnvFile('=2\n')).toThrow('line 1');
  });
});
