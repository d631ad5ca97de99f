import { expect, test } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { chownNeedsNames, resolveChown } from './users.js';

const files = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\napp:x:1500:2000::/home/app:/bin/sh\n',
  group: 'root:x:0:\nstaff:x:50:\napps:x:2000:\n',
};

test('resolveChown takes names from the image files and numbers as they are', () => {
  expect(resolveChown('app:staff', files)).toEqual({ uid: 1500, gid: 50 });
  expect(resolveChown('app', files)).toEqual({ uid: 1500, gid: 2000 });
  expect(resolveChown('1000', files)).toEqual({ uid: 1000, gid: 1000 });
  expect(resolveChown('1000:apps', files)).toEqual({ uid: 1000, gid: 2000 });
  expect(resolveChown('app:7', files)).toEqual({ uid: 1500, gid: 7 });
  expect(resolveChown('root', {})).toEqual({ uid: 0, gid: 0 });
});

test('resolveChown names what it cannot find', () => {
  expect(() => resolveChown('nobody2:staff', files)).toThrow(/no user "nobody2" in the image's \/etc\/passwd/);
  expect(() => resolveChown('app:wheel', files)).toThrow(/no group "wheel" in the image's \/etc\/group/);
  expect(() => resolveChown('app', {})).toThrow(InvalidArgumentError);
  expect(() => resolveChown(':1', files)).toThrow(/is not USER\[:GROUP\]/);
  expect(chownNeedsNames('1:2')).toBe(false);
  expect(chownNeedsNames('app:2')).toBe(true);
});
