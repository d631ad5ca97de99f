import { describe, expect, it } from 'vitest';
import { splitCpArg } from './containers.js';

describe('splitCpArg', () => {
  it('reads CONTAINER:PATH as Docker does: absolute and ./ paths stay local', () => {
    expect(splitCpArg('c1:/x')).toEqual({ container: 'c1', path: '/x' });
    expect(splitCpArg('/a:b')).toEqual({ path: '/a:b' });
    expect(splitCpArg('./a:b')).toEqual({ path: './a:b' });
    expect(splitCpArg('-')).toEqual({ path: '-' });
  });
});
