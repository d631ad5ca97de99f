import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { assignableRange, contains, formatCidr, formatIpv4, overlaps, parseCidr, parseIpv4, within } from './cidr.js';

describe('cidr', () => {
  it('parses and formats IPv4 addresses', () => {
    expect(parseIpv4('10.231.1.5')).toBe(0x0ae70105);
    expect(formatIpv4(0x0ae70105)).toBe('10.231.1.5');
    expect(formatIpv4(0xffffffff)).toBe('255.255.255.255');
    for (const bad of ['10.1.1', '256.0.0.1', '1.2.3.4.5', '01.2.3.4', 'a.b.c.d', '']) expect(parseIpv4(bad)).toBeUndefined();
  });

  it('parses CIDRs and refuses host bits and junk', () => {
    expect(formatCidr(parseCidr('10.88.0.0/16', 'subnet'))).toBe('10.88.0.0/16');
    expect(parseCidr('0.0.0.0/0', 'subnet').prefix).toBe(0);
    for (const bad of ['10.88.0.1/16', '10.88.0.0', '10.88.0.0/33', '10.88.0.0/x', 'fd00::/64', '10.0.0.0/8/1']) {
      expect(() => parseCidr(bad, 'subnet')).toThrow(InvalidArgumentError);
    }
  });

  it('answers containment and overlap', () => {
    const a = parseCidr('10.231.0.0/16', 's');
    const b = parseCidr('10.231.5.0/24', 's');
    const c = parseCidr('10.232.0.0/24', 's');
    expect(overlaps(a, b)).toBe(true);
    expect(overlaps(b, a)).toBe(true);
    expect(overlaps(a, c)).toBe(false);
    expect(within(b, a)).toBe(true);
    expect(within(a, b)).toBe(false);
    expect(contains(b, parseIpv4('10.231.5.255')!)).toBe(true);
    expect(contains(b, parseIpv4('10.231.6.0')!)).toBe(false);
  });

  it('leaves out network and broadcast addresses', () => {
    const s = parseCidr('10.231.7.0/24', 's');
    const r = assignableRange(s);
    expect(formatIpv4(r.first)).toBe('10.231.7.1');
    expect(formatIpv4(r.last)).toBe('10.231.7.254');
    const narrowed = assignableRange(s, parseCidr('10.231.7.128/25', 'r'));
    expect(formatIpv4(narrowed.first)).toBe('10.231.7.128');
    expect(formatIpv4(narrowed.last)).toBe('10.231.7.254');
    const p2p = assignableRange(parseCidr('10.0.0.0/31', 's'));
    expect([formatIpv4(p2p.first), formatIpv4(p2p.last)]).toEqual(['10.0.0.0', '10.0.0.1']);
  });
});
