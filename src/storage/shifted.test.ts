import { describe, expect, it } from 'vitest';
import { shiftCapability } from './shifted.js';

const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
const v2 = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw=ep, version 2
const v3 = (rootid: number) => { const b = Buffer.alloc(24); v2.copy(b); b.writeUInt32LE(0x03000001, 0); b.writeUInt32LE(rootid, 20); return b; };

describe('shiftCapability', () => {
  it('makes a version 2 capability the mapped root\'s version 3 one', () => {
    expect(shiftCapability(v2, map)).toEqual(v3(100000));
  });
  it('shifts a version 3 rootid through the map, and drops one the map leaves out', () => {
    expect(shiftCapability(v3(1000), map)).toEqual(v3(101000));
    expect(shiftCapability(v3(70000), map)).toBeUndefined();
  });
  it('leaves what is no capability it knows', () => {
    expect(shiftCapability(Buffer.alloc(12), map)).toBeUndefined();
    expect(shiftCapability(Buffer.from('0100000100200000000000000000000000000000', 'hex'), map)).toBeUndefined();
  });
});
