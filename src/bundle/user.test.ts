import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseGroups, parsePasswd, resolveUser } from './user.js';

const db = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1001::/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n',
  group: 'root:x:0:\nwheel:x:10:app,web\naudio:x:29:app\nappgrp:x:1001:\nstaff:x:50:\n',
};

describe('resolveUser', () => {
  it('defaults to root with HOME /root, even without a passwd file', () => {
    expect(resolveUser(undefined, db)).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root', username: 'root' });
    expect(resolveUser('', { passwd: '', group: '' })).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root' });
  });

  it('resolves a name to its uid, primary gid, home and member groups', () => {
    expect(resolveUser('app', db)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10, 29], home: '/home/app', username: 'app' });
  });

  it('resolves a uid that has a passwd entry the same way', () => {
    expect(resolveUser('33', db)).toMatchObject({ uid: 33, gid: 33, additionalGids: [33, 10], home: '/var/www' });
  });

  it('accepts a uid with no entry, with gid 0 and HOME /', () => {
    expect(resolveUser('4242', db)).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
  });

  it('takes an explicit group by name or number, without membership groups (runc rules)', () => {
    expect(resolveUser('app:staff', db)).toMatchObject({ uid: 1000, gid: 50, additionalGids: [50] });
    expect(resolveUser('1000:777', db)).toMatchObject({ uid: 1000, gid: 777, additionalGids: [777] });
  });

  it('refuses an unknown user or group name with Docker\'s message', () => {
    expect(() => resolveUser('ghost', db)).toThrow(InvalidArgumentError);
    expect(() => resolveUser('ghost', db)).toThrow('unable to find user ghost: no matching entries in passwd file');
    expect(() => resolveUser('app:ghosts', db)).toThrow('unable to find group ghosts: no matching entries in group file');
  });

  it('refuses IDs out of range and an empty user', () => {
    expect(() => resolveUser('4294967296', db)).toThrow('out of range');
    expect(() => resolveUser(':10', db)).toThrow(InvalidArgumentError);
  });
});

describe('parsePasswd / parseGroups', () => {
  it('skip comments and malformed lines', () => {
    expect(parsePasswd(db.passwd).map((e) => e.name)).toEqual(['root', 'app', 'web']);
    expect(parseGroups(db.group).find((g) => g.name === 'wheel')?.members).toEqual(['app', 'web']);
  });
});
