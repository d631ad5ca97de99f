import { expect, test } from 'vitest';
import { detectCompression } from './compression.js';

test('detectCompression reads the magic bytes', () => {
  expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
  expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
  expect(detectCompression(Buffer.from('etc/'))).toBe('none');
  expect(detectCompression(Buffer.alloc(0))).toBe('none');
});
