import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { cleanPath, goMatch, goPatternError, hasWildcards, parseDockerIgnore } from './ignore.js';

/**
 * Docker's documented examples (the .dockerignore section of the build-context reference), plus the edges
 * of moby/patternmatcher: each row is a .dockerignore, and the paths it excludes and keeps.
 */
const TABLE: { name: string; file: string; excluded: string[]; kept: string[] }[] = [
  {
    name: 'docs example: */temp*, */*/temp*, temp?',
    file: '# comment\n*/temp*\n*/*/temp*\ntemp?\n',
    excluded: ['somedir/temporary.txt', 'somedir/temp', 'somedir/subdir/temporary.txt', 'tempa', 'tempb', 'somedir/temp/inner.txt'],
    kept: ['temp', 'tempab', 'temporary.txt', 'a/b/c/temp', '# comment'],
  },
  {
    name: 'docs: **/*.go excludes .go files in every directory, the root included',
    file: '**/*.go',
    excluded: ['main.go', 'cmd/x/main.go', 'a/b/c/d.go'],
    kept: ['main.go.txt', 'go', 'README.md'],
  },
  {
    name: 'docs: *.md then !README.md',
    file: '*.md\n!README.md\n',
    excluded: ['CHANGES.md'],
    kept: ['README.md', 'docs/guide.md', 'main.go'],
  },
  {
    name: 'docs: *.md, !README*.md, README-secret.md (the last line wins)',
    file: '*.md\n!README*.md\nREADME-secret.md\n',
    excluded: ['CHANGES.md', 'README-secret.md'],
    kept: ['README.md', 'README-other.md'],
  },
  {
    name: 'docs: *.md, README-secret.md, !README*.md (the middle line has no effect)',
    file: '*.md\nREADME-secret.md\n!README*.md\n',
    excluded: ['CHANGES.md'],
    kept: ['README.md', 'README-secret.md'],
  },
  {
    name: 'docs: leading and trailing slashes are ignored',
    file: '/foo/bar/\n',
    excluded: ['foo/bar', 'foo/bar/baz.txt'],
    kept: ['foo', 'bar', 'x/foo/bar', 'foo/barn'],
  },
  {
    name: 'a directory excludes what is beneath it; an exception beneath brings a file back',
    file: 'node_modules\n!node_modules/keep/this.js\n',
    excluded: ['node_modules', 'node_modules/x/index.js', 'node_modules/keep/other.js'],
    kept: ['node_modules/keep/this.js', 'src/node_modules.ts'],
  },
  {
    name: '** forms: alone, trailing, leading, inside',
    file: 'a/**/b\nlogs/**\n**/cache\n',
    excluded: ['a/b', 'a/x/b', 'a/x/y/b', 'a/x/y/b/c', 'logs/1.txt', 'logs/x/y', 'cache', 'x/y/cache', 'x/cache/z'],
    kept: ['a', 'a/c', 'ab', 'logs', 'xcache', 'cachex'],
  },
  {
    name: '** alone excludes everything; ! brings one file back',
    file: '**\n!Dockerfile\n!src\n',
    excluded: ['x', 'a/b/c', '.git/HEAD'],
    kept: ['Dockerfile', 'src', 'src/index.ts'],
  },
  {
    name: 'cleaning: ./, .., repeated slashes; ? and [] never cross /',
    file: './build//out\nfoo/../secret\nf?x\n[a-c]x\n[^a]y\n',
    excluded: ['build/out', 'build/out/a.o', 'secret', 'fox', 'ax', 'cx', 'by'],
    kept: ['build', 'foo/secret', 'f/o', 'dx', 'ay', 'f/x'],
  },
  {
    name: 'a comment is only a # at column 0; spaces around a pattern are trimmed',
    file: '\uFEFF# not a pattern\n  # a pattern  \n   spaced.txt   \n\n',
    excluded: ['# a pattern', 'spaced.txt'],
    kept: ['not a pattern', '# not a pattern'],
  },
  {
    // patternmatcher quirk kept on purpose: a `\` escape only takes effect in a pattern that also has a
    // wildcard; without one the pattern is compared as written, backslash included.
    name: 'escapes and regexp characters are literal',
    file: 'a+b.(c)\nst?r\\*\nplain\\*\n$HOME\n',
    excluded: ['a+b.(c)', 'star*', 'plain\\*', '$HOME'],
    kept: ['aab.(c)', 'a+bx(c)', 'starx', 'plain*', 'HOME'],
  },
  {
    name: 'matching is case-sensitive, and c++ is a name, not a regexp',
    file: 'Secret\nc++\n',
    excluded: ['Secret', 'c++', 'c++/x.cc'],
    kept: ['secret', 'SECRET', 'c', 'cc'],
  },
];

describe('parseDockerIgnore', () => {
  for (const row of TABLE) {
    it(row.name, () => {
      const ig = parseDockerIgnore(row.file);
      for (const p of row.excluded) expect(ig.ignores(p), `${p} should be excluded`).toBe(true);
      for (const p of row.kept) expect(ig.ignores(p), `${p} should be kept`).toBe(false);
    });
  }

  it('refuses "!" alone and a malformed pattern, naming the line', () => {
    expect(() => parseDockerIgnore('a\n!\n')).toThrow(/line 2: "!" alone/);
    expect(() => parseDockerIgnore('ok\n[abc\n')).toThrow(InvalidArgumentError);
    expect(() => parseDockerIgnore('ok\n[abc\n')).toThrow(/line 2: bad pattern "\[abc"/);
    expect(() => parseDockerIgnore('x\\')).toThrow(/trailing/);
  });

  it('keeps patterns in order with their lines', () => {
    const ig = parseDockerIgnore('# c\n*.md\n\n!/README.md\n');
    expect(ig.patterns).toEqual([
      { pattern: '*.md', exception: false, line: 2 },
      { pattern: 'README.md', exception: true, line: 4 },
    ]);
  });

  it('says when an excluded directory must still be walked for an exception', () => {
    const ig = parseDockerIgnore('node_modules\nvendor\n!node_modules/keep\n');
    expect(ig.mayIncludeBeneath('node_modules')).toBe(true);
    expect(ig.mayIncludeBeneath('vendor')).toBe(false);
    expect(parseDockerIgnore('**/x\n!**/y\n').mayIncludeBeneath('a/b')).toBe(true);
    expect(parseDockerIgnore('a\n').mayIncludeBeneath('a')).toBe(false);
  });
});

describe('goMatch (Go filepath.Match)', () => {
  const rows: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*', 'ab/c', false],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['*x', 'xxx', true],
  ];
  for (const [p, s, want] of rows) {
    it(`${p} ~ ${s} → ${want}`, () => expect(goMatch(p, s)).toBe(want));
  }

  it('reports malformed patterns as Go does (ErrBadPattern), even after a mismatch', () => {
    for (const p of ['[', '[^', '[^bc', 'a[', '[a-', '[]a]', '[-]', '[x-]', '[-x]', '\\', '[a-b-c]', 'a[']) {
      expect(goPatternError(p), p).toBeDefined();
    }
    expect(() => goMatch('[]a]', ']', 'COPY source')).toThrow(/invalid COPY source: bad pattern/);
    expect(goPatternError('*.go')).toBeUndefined();
  });

  it('finds wildcards unless escaped', () => {
    expect(hasWildcards('src/*.ts')).toBe(true);
    expect(hasWildcards('file[1]')).toBe(true);
    expect(hasWildcards('plain/path')).toBe(false);
    expect(hasWildcards('lit\\*')).toBe(false);
  });

  it('cleans paths like Go filepath.Clean', () => {
    expect(cleanPath('./a//b/../c/')).toBe('a/c');
    expect(cleanPath('/../x')).toBe('/x');
    expect(cleanPath('../x')).toBe('../x');
    expect(cleanPath('')).toBe('.');
  });
});
