import { expect, test } from 'vitest';
import { quote, restoreScript } from './xattrs.js';

test('quote escapes every byte that could end or bend a line as octal', () => {
  expect(quote('usr/bin/ping')).toBe('usr/bin/ping');
  expect(quote('a b=c\n\\')).toBe('a\\040b\\075c\\012\\134');
  expect(quote('é')).toBe('\\303\\251');
});

test('restoreScript writes getfattr dump blocks with base64 values', () => {
  const script = restoreScript([
    { path: '', name: 'trusted.overlay.opaque', value: Buffer.from('y') },
    { path: 'bin/ping', name: 'security.capability', value: Buffer.from([1, 0, 0, 2]) },
  ]);
  expect(script).toBe('# file: .\ntrusted.overlay.opaque=0seQ==\n\n# file: bin/ping\nsecurity.capability=0sAQAAAg==\n');
});
