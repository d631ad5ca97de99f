import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { chainsPresent, comment, jumpFixes, ownersInSave, renderAppend, renderRemoval, renderRestore, rulesOwnedBy, validateChainPrefix } from './firewall.js';

const ID = 'a'.repeat(64);

describe('firewall text', () => {
  it('adds missing jumps once and removes extra copies', () => {
    const none = jumpFixes('*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n*nat\nCOMMIT\n', 'BERTHT1');
    expect(none.filter).toEqual(['-I FORWARD 1 -m comment --comment "berth:BERTHT1" -j BERTHT1-FORWARD']);
    expect(none.nat).toHaveLength(3);
    expect(none.raw).toEqual(['-I PREROUTING 1 -m comment --comment "berth:BERTHT1" -j BERTHT1-PREROUTING']);
    const dup = '*filter\n-A FORWARD -m comment --comment "berth:BERTHT1" -j BERTHT1-FORWARD\n'.repeat(2) + '*nat\n'
      + '-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "berth:BERTHT1" -j BERTHT1-DNAT\n'
      + '-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "berth:BERTHT1" -j BERTHT1-DNAT\n'
      + '-A POSTROUTING -m comment --comment "berth:BERTHT1" -j BERTHT1-POSTROUTING\n';
    const fixes = jumpFixes(dup, 'BERTHT1');
    expect(fixes.filter).toEqual(['-D FORWARD -m comment --comment "berth:BERTHT1" -j BERTHT1-FORWARD']);
    expect(fixes.nat).toEqual([]);
  });

  it('rewrites only its own chains', () => {
    const text = renderRestore('BERTHT1', { forward: ['-i b -j ACCEPT'], dnat: ['-p tcp -j DNAT --to-destination 10.0.0.2:80'] }, { filter: [], nat: [], raw: [] });
    const declared = text.split('\n').filter((l) => l.startsWith(':')).map((l) => l.split(' ')[0]);
    expect(declared).toEqual([':BERTHT1-FORWARD', ':BERTHT1-ISOLATION-1', ':BERTHT1-ISOLATION-2', ':BERTHT1-PORTS', ':BERTHT1-DNAT', ':BERTHT1-POSTROUTING', ':BERTHT1-PREROUTING']);
    // Published ports are reached from FORWARD before any network rule, so a network's final DROP cannot shadow them.
    expect(text.indexOf('-A BERTHT1-FORWARD -m comment --comment "berth:BERTHT1" -j BERTHT1-PORTS')).toBeLessThan(text.indexOf('-A BERTHT1-FORWARD -i b'));
    expect(text).toContain('-A BERTHT1-FORWARD -i b -j ACCEPT');
    expect(text).not.toMatch(/^-F|^-X/m);
  });

  it('appends one owner\'s rules without declaring (and so flushing) any chain', () => {
    const mine = `-p tcp -m tcp --dport 8080 ${comment(ID)} -j DNAT --to-destination 10.0.0.2:80`;
    const owned = rulesOwnedBy({ forward: ['-i b -j ACCEPT'], dnat: [mine, `-p tcp ${comment('b'.repeat(64))} -j DNAT`] }, ID);
    expect(owned).toEqual({ forward: [], dnat: [mine] });
    const text = renderAppend('BERTHT1', owned, { filter: [], nat: ['-A OUTPUT -j BERTHT1-DNAT'], raw: [] });
    expect(text.split('\n').filter((l) => l.startsWith(':'))).toEqual([]);
    expect(text).toContain(`-A BERTHT1-DNAT ${mine}`);
    expect(text).toContain('-A OUTPUT -j BERTHT1-DNAT');
  });

  it('tells whether all of its chains exist', () => {
    const all = renderRestore('BERTHT1', {}, { filter: [], nat: [], raw: [] });
    expect(chainsPresent(all, 'BERTHT1')).toBe(true);
    expect(chainsPresent(all.replace(':BERTHT1-DNAT - [0:0]\n', ''), 'BERTHT1')).toBe(false);
  });

  it('removes jumps and chains', () => {
    const save = '*filter\n:BERTHT1-FORWARD - [0:0]\n-A FORWARD -m comment --comment "berth:BERTHT1" -j BERTHT1-FORWARD\n';
    const text = renderRemoval(save, 'BERTHT1');
    expect(text).toContain('-D FORWARD -m comment --comment "berth:BERTHT1" -j BERTHT1-FORWARD');
    expect(text).toContain('-X BERTHT1-FORWARD');
    expect(text).not.toContain('-X BERTHT1-DNAT');
  });

  it('finds rule owners and checks prefixes', () => {
    expect([...ownersInSave(`-A BERTHT1-DNAT -p tcp -m comment --comment "berth:${ID}" -j DNAT\n-A OTHER -m comment --comment "berth:${'b'.repeat(64)}"`, 'BERTHT1')]).toEqual([ID]);
    expect(() => validateChainPrefix('DOCKER')).toThrow(InvalidArgumentError);
    expect(validateChainPrefix('BERTHT12')).toBe('BERTHT12');
  });
});
