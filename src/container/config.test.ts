import { describe, expect, it } from 'vitest';
import { parseExpose, parseLabelFile } from './config.js';

describe('parseLabelFile (docker --label-file)', () => {
  it('reads NAME=VALUE and NAME lines; skips comments, blanks and leading blanks; keeps = in values', () => {
    expect(parseLabelFile('\uFEFF# c\n  a=1\nb\n\n c=x=y \r\n', 'f')).toEqual({ a: '1', b: '', c: 'x=y ' });
  });

  it('refuses a line with no name or a name with blanks, naming the file and line', () => {
    expect(() => parseLabelFile('a=1\n=2\n', 'f')).toThrow(/f line 2/);
    expect(() => parseLabelFile('a b=1', 'f')).toThrow(/f line 1.*whitespace/);
  });
});

describe('parseExpose (docker --expose)', () => {
  it('takes PORT, PORT/PROTO and ranges, expanded', () => {
    expect(parseExpose('80')).toEqual(['80/tcp']);
    expect(parseExpose('53/UDP')).toEqual(['53/udp']);
    expect(parseExpose('7000-7002/sctp')).toEqual(['7000/sctp', '7001/sctp', '7002/sctp']);
  });

  it.each(['', '0', '65536', '10-5', '80/icmp', 'http', '80-', '-80', '80/tcp/udp'])('refuses %j', (text) => {
    expect(() => parseExpose(text)).toThrow(/invalid range format for --expose/);
  });
});
