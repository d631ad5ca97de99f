import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import {
  checkIdMaps, findFree, formatUsernsMode, freeSubidStart, keepIdMaps, mappingKey, openAllocator, parseIdMap, parseSubidFile, parseUsernsMode, rangesOf, toContainerId, toHostId,
} from './index.js';

describe('parseSubidFile', () => {
  it('reads NAME:START:COUNT lines, skipping comments and blanks, and finds a user by name or uid', () => {
    const ranges = parseSubidFile('# comment\n\nalice:100000:65536\nberth:1000000000:1000000000\n1001:200000:10\n', '/etc/subuid');
    expect(ranges).toEqual([
      { owner: 'alice', start: 100000, count: 65536 },
      { owner: 'berth', start: 1000000000, count: 1000000000 },
      { owner: '1001', start: 200000, count: 10 },
    ]);
    expect(rangesOf(ranges, { name: 'berth' })).toHaveLength(1);
    expect(rangesOf(ranges, { name: 'bob', uid: 1001 })).toEqual([{ owner: '1001', start: 200000, count: 10 }]);
    expect(rangesOf(ranges, { name: 'carol' })).toEqual([]);
  });

  it('suggests a free range from 100000 up, past what is taken', () => {
    expect(freeSubidStart([])).toBe(100000);
    expect(freeSubidStart(parseSubidFile('a:100000:65536\nb:165536:65536\n', 'f'))).toBe(231072);
    expect(freeSubidStart(parseSubidFile('a:400000:10\n', 'f'))).toBe(100000);
    expect(freeSubidStart(parseSubidFile('a:1500000000:65536\n', 'f'), 65536, 1500000000)).toBe(1500065536);
  });

  it.each(['alice:100000', 'alice:x:1', 'alice:1:0', ':1:2', 'a:1:2:3', 'a:4294967290:10'])('refuses the malformed line %j, naming file and line', (line) => {
    expect(() => parseSubidFile(`ok:1:1\n${line}\n`, '/etc/subgid')).toThrow(new RegExp(`/etc/subgid line 2 is not NAME:START:COUNT`));
  });
});

describe('id maps', () => {
  it('parses CONTAINER:HOST:SIZE and maps ids both ways', () => {
    const m = parseIdMap('--uidmap', '0:100000:65536');
    expect(m).toEqual({ containerID: 0, hostID: 100000, size: 65536 });
    expect(toHostId([m], 1000)).toBe(101000);
    expect(toHostId([m], 65536)).toBeUndefined();
    expect(toContainerId([m], 100000)).toBe(0);
    expect(toContainerId([m], 0)).toBeUndefined();
  });

  it.each([['0:1', /is not CONTAINER:HOST:SIZE/], ['a:1:2', /is not CONTAINER:HOST:SIZE/], ['0:1:0', /size must be at least 1/],
    ['0:4294967295:2', /past the largest id/], ['-1:1:1', /is not CONTAINER:HOST:SIZE/]])('refuses %j', (text, message) => {
    expect(() => parseIdMap('--uidmap', text)).toThrow(message);
    expect(() => parseIdMap('--uidmap', text)).toThrow(InvalidArgumentError);
  });

  it('refuses ranges that overlap on either side, and no ranges', () => {
    const a = parseIdMap('--uidmap', '0:100000:1000');
    expect(() => checkIdMaps('--uidmap', [a, parseIdMap('--uidmap', '500:300000:10')])).toThrow(/overlap on the container side/);
    expect(() => checkIdMaps('--uidmap', [a, parseIdMap('--uidmap', '2000:100500:10')])).toThrow(/overlap on the host side/);
    expect(() => checkIdMaps('--uidmap', [])).toThrow(/no ranges/);
    expect(checkIdMaps('--uidmap', [a, parseIdMap('--uidmap', '1000:200000:10')])).toHaveLength(2);
  });

  it('names a mapping by its maps: equal maps share a key', () => {
    const one = { uid: [parseIdMap('u', '0:100000:65536')], gid: [parseIdMap('g', '0:100000:65536')] };
    expect(mappingKey(one)).toBe(mappingKey(structuredClone(one)));
    expect(mappingKey(one)).not.toBe(mappingKey({ ...one, gid: [parseIdMap('g', '0:200000:65536')] }));
    expect(mappingKey(one)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('parseUsernsMode', () => {
  it('reads podman\'s modes and auto\'s size', () => {
    expect(parseUsernsMode('host')).toEqual({ kind: 'host' });
    expect(parseUsernsMode('auto')).toEqual({ kind: 'auto', size: 65536 });
    expect(parseUsernsMode('auto:size=1000')).toEqual({ kind: 'auto', size: 1000 });
    expect(parseUsernsMode('private')).toEqual({ kind: 'private', size: 65536 });
    expect(parseUsernsMode('keep-id')).toEqual({ kind: 'keep-id' });
    expect(formatUsernsMode(parseUsernsMode('auto:size=1000'))).toBe('auto:size=1000');
    expect(formatUsernsMode(parseUsernsMode('auto'))).toBe('auto');
  });

  it.each([['auto:size=0', /size "0"/], ['auto:size=x', /size "x"/], ['auto:uidmapping=0:1:1', /unknown option "uidmapping"/],
    ['nomap', /"nomap" is not a user namespace mode/], ['', /is not a user namespace mode/], ['host:x', /is not a user namespace mode/]])('refuses %j', (text, message) => {
    expect(() => parseUsernsMode(text)).toThrow(message);
  });
});

describe('findFree', () => {
  const ranges = [{ owner: 'berth', start: 1000, count: 300 }, { owner: 'berth', start: 5000, count: 100 }];
  it('takes the first gap that fits, across the user\'s ranges', () => {
    expect(findFree(ranges, [], 100)).toBe(1000);
    expect(findFree(ranges, [{ start: 1000, size: 100 }], 100)).toBe(1100);
    expect(findFree(ranges, [{ start: 1100, size: 100 }], 100)).toBe(1000);
    expect(findFree(ranges, [{ start: 1050, size: 100 }], 100)).toBe(1150);
    expect(findFree(ranges, [{ start: 1000, size: 250 }], 100)).toBe(5000);
  });
  it('refuses when nothing fits, saying what to do', () => {
    expect(() => findFree(ranges, [{ start: 1000, size: 300 }, { start: 5000, size: 1 }], 100)).toThrow(BadStateError);
    expect(() => findFree(ranges, [], 301)).toThrow(/no free range of 301 ids/);
  });
});

describe('openAllocator', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const setup = (line = 'berth:1000:300\n') => {
    dir = mkdtempSync(path.join(tmpdir(), 'berth-alloc-'));
    writeFileSync(path.join(dir, 'subuid'), `other:0:100000\n${line}`);
    writeFileSync(path.join(dir, 'subgid'), `${line}`);
    return openAllocator({ registry: path.join(dir, 'reg', 'ranges.json'), subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid') });
  };
  const owner = (root: string, container: string) => {
    const marker = path.join(dir, root, container);
    mkdirSync(marker, { recursive: true });
    return { root: path.join(dir, root), container, marker };
  };

  it('hands out disjoint ranges across roots, repeats an owner\'s own, and frees at release', async () => {
    const alloc = setup();
    const a = await alloc.allocate(owner('r1', 'a'), 100);
    const b = await alloc.allocate(owner('r2', 'a'), 100);
    expect(a.uid).toEqual([{ containerID: 0, hostID: 1000, size: 100 }]);
    expect(b.uid).toEqual([{ containerID: 0, hostID: 1100, size: 100 }]);
    expect(b.gid).toEqual([{ containerID: 0, hostID: 1100, size: 100 }]);
    expect(await alloc.allocate(owner('r1', 'a'), 100)).toEqual(a);
    await alloc.release({ root: path.join(dir, 'r1'), container: 'a' });
    await alloc.release({ root: path.join(dir, 'r1'), container: 'a' });
    expect((await alloc.allocate(owner('r3', 'c'), 100)).uid[0]!.hostID).toBe(1000);
    expect(JSON.parse(readFileSync(path.join(dir, 'reg', 'ranges.json'), 'utf8')).entries).toHaveLength(2);
  });

  it('reclaims the range of an owner whose folder is gone (a deleted root, a crashed create)', async () => {
    const alloc = setup('berth:1000:200\n');
    const a = owner('r1', 'a');
    await alloc.allocate(a, 100);
    await alloc.allocate(owner('r1', 'b'), 100);
    await expect(alloc.allocate(owner('r1', 'c'), 100)).rejects.toThrow(/no free range of 100 ids/);
    rmSync(path.join(dir, 'r1', 'a'), { recursive: true });
    expect((await alloc.allocate(owner('r1', 'c'), 100)).uid[0]!.hostID).toBe(1000);
    expect((await alloc.list()).map((e) => e.container).sort()).toEqual(['b', 'c']);
  });

  it('says which line to add when the berth entry is missing, and writes nothing', async () => {
    const alloc = setup('someone:1000:300\n');
    await expect(alloc.allocate(owner('r1', 'a'), 100)).rejects.toThrow(/has no range for user "berth"/);
    await expect(alloc.allocate(owner('r1', 'a'), 100)).rejects.toMatchObject({ hint: expect.stringContaining('berth:1000000000:1000000000') });
    expect(await alloc.list()).toEqual([]);
  });
});

describe('keepIdMaps', () => {
  it('keeps the user\'s id, takes the ids below it from 1 and keeps those above, each outer id once', () => {
    expect(keepIdMaps(1000, 65537)).toEqual([{ containerID: 0, hostID: 1, size: 1000 }, { containerID: 1000, hostID: 0, size: 1 }, { containerID: 1001, hostID: 1001, size: 64536 }]);
    // A uid past the namespace's ids: all of them below it.
    expect(keepIdMaps(70000, 65537)).toEqual([{ containerID: 0, hostID: 1, size: 65536 }, { containerID: 70000, hostID: 0, size: 1 }]);
  });
});
