import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { assignableRange6, contains6, formatCidr6, formatIpv6, overlaps6, parseCidr6, parseIpv6, within6 } from './cidr6.js';

describe('cidr6', () => {
  it('parses full and compressed forms and formats them as RFC 5952', () => {
    expect(parseIpv6('::')).toBe(0n);
    expect(parseIpv6('::1')).toBe(1n);
    expect(parseIpv6('fd00:b5e7::2')).toBe((0xfd00b5e7n << 96n) | 2n);
    expect(parseIpv6('FD00:0:0:0:0:0:0:2')).toBe(parseIpv6('fd00::2'));
    const cases: [string, string][] = [
      ['fd00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['fd00::', 'fd00::'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ];
    for (const [input, out] of cases) expect(formatIpv6(parseIpv6(input)!)).toBe(out);
    for (const bad of ['', ':::', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'g::1', '12345::', '10.0.0.1', '::ffff:10.0.0.1']) {
      expect(parseIpv6(bad)).toBeUndefined();
    }
  });

  it('parses CIDRs from /48 to /120 and refuses host bits', () => {
    expect(formatCidr6(parseCidr6('fd00:b5e7:0:1::/64', 's'))).toBe('fd00:b5e7:0:1::/64');
    expect(formatCidr6(parseCidr6('FD00:B5E7:0000::/48', 's'))).toBe('fd00:b5e7::/48');
    expect(parseCidr6('fd00::100/120', 's').prefix).toBe(120);
    for (const bad of ['fd00::/47', 'fd00::/121', 'fd00::1/64', 'fd00::', 'fd00::/x', '10.0.0.0/24', 'fd00::/64/1']) {
      expect(() => parseCidr6(bad, 'subnet')).toThrow(InvalidArgumentError);
    }
    expect(() => parseCidr6('fd00::1/64', 'subnet')).toThrow(expect.objectContaining({ hint: 'use fd00::/64' }));
  });

  it('does containment, overlap and the assignable range', () => {
    const a = parseCidr6('fd00:1::/64', 's');
    expect(contains6(a, parseIpv6('fd00:1::ffff:ffff:ffff:ffff')!)).toBe(true);
    expect(contains6(a, parseIpv6('fd00:1:0:1::')!)).toBe(false);
    expect(overlaps6(a, parseCidr6('fd00:1::/48', 's'))).toBe(true);
    expect(overlaps6(a, parseCidr6('fd00:1:0:1::/64', 's'))).toBe(false);
    expect(within6(parseCidr6('fd00:1::100/120', 's'), a)).toBe(true);
    expect(within6(parseCidr6('fd00:1::/48', 's'), a)).toBe(false);
    const r = assignableRange6(a);
    expect(formatIpv6(r.first)).toBe('fd00:1::1');
    expect(formatIpv6(r.last)).toBe('fd00:1::ffff:ffff:ffff:ffff');
    const ranged = assignableRange6(a, parseCidr6('fd00:1::100/120', 's'));
    expect([formatIpv6(ranged.first), formatIpv6(ranged.last)]).toEqual(['fd00:1::100', 'fd00:1::1ff']);
  });
});
