import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { ALL_CAPABILITIES, capabilitiesOfMask, capabilityMask, DEFAULT_CAPABILITIES, resolveCapabilities } from './capabilities.js';

describe('resolveCapabilities', () => {
  it('gives Docker\'s 14 defaults, whose mask is CapEff 00000000a80425fb', () => {
    const caps = resolveCapabilities({});
    expect(caps).toEqual(DEFAULT_CAPABILITIES);
    expect(caps).toHaveLength(14);
    expect(capabilityMask(caps)).toBe('00000000a80425fb');
  });

  it('adds and drops names with or without CAP_, in any case', () => {
    const caps = resolveCapabilities({ capAdd: ['net_admin', 'CAP_SYS_PTRACE'], capDrop: ['Chown', 'cap_kill'] });
    expect(caps).toContain('CAP_NET_ADMIN');
    expect(caps).toContain('CAP_SYS_PTRACE');
    expect(caps).not.toContain('CAP_CHOWN');
    expect(caps).not.toContain('CAP_KILL');
    expect(caps).toHaveLength(14);
  });

  it('--cap-drop ALL keeps only the added ones', () => {
    expect(resolveCapabilities({ capDrop: ['ALL'], capAdd: ['NET_ADMIN'] })).toEqual(['CAP_NET_ADMIN']);
    expect(capabilityMask(resolveCapabilities({ capDrop: ['all'] }))).toBe('0000000000000000');
  });

  it('--cap-add ALL gives every capability but the dropped ones', () => {
    const caps = resolveCapabilities({ capAdd: ['ALL'], capDrop: ['SYS_ADMIN'] });
    expect(caps).toHaveLength(ALL_CAPABILITIES.length - 1);
    expect(caps).not.toContain('CAP_SYS_ADMIN');
  });

  it('--privileged gives every capability, up to CAP_CHECKPOINT_RESTORE', () => {
    const caps = resolveCapabilities({ privileged: true, capDrop: ['ALL'] });
    expect(caps).toEqual(ALL_CAPABILITIES);
    expect(capabilityMask(caps)).toBe('000001ffffffffff');
  });

  it('does not repeat a default that is also added', () => {
    expect(resolveCapabilities({ capAdd: ['CHOWN'] })).toEqual(DEFAULT_CAPABILITIES);
  });

  it('refuses an unknown name, naming it and the flag', () => {
    expect(() => resolveCapabilities({ capAdd: ['NET_FLY'] })).toThrow(InvalidArgumentError);
    expect(() => resolveCapabilities({ capAdd: ['NET_FLY'] })).toThrow('invalid --cap-add: unknown capability: "NET_FLY"');
    expect(() => resolveCapabilities({ capDrop: ['bogus'] })).toThrow('--cap-drop');
  });
});

describe('capabilities the engine does not hold', () => {
  const held = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');

  it('--privileged and --cap-add ALL give only what is held', () => {
    expect(resolveCapabilities({ privileged: true }, held)).toEqual(held);
    expect(capabilityMask(resolveCapabilities({ privileged: true }, held))).toBe('000001fffeffffff');
    expect(resolveCapabilities({ capAdd: ['ALL'] }, held)).not.toContain('CAP_SYS_RESOURCE');
  });

  it('refuses to add one by name', () => {
    expect(() => resolveCapabilities({ capAdd: ['SYS_RESOURCE'] }, held)).toThrow('CAP_SYS_RESOURCE is not available');
  });

  it('capabilitiesOfMask reads a CapBnd mask', () => {
    expect(capabilitiesOfMask('00000000a80425fb')).toEqual([...DEFAULT_CAPABILITIES].sort((a, b) => ALL_CAPABILITIES.indexOf(a) - ALL_CAPABILITIES.indexOf(b)));
    expect(capabilitiesOfMask('000001fffeffffff')).toEqual(held);
  });
});
