import { describe, expect, it } from 'vitest';
import { frameHeader } from '../service/streams.js';
import { FrameReader, LogLines } from './frames.js';

const frame = (kind: 1 | 2, text: string) => Buffer.concat([frameHeader(kind, Buffer.byteLength(text)), Buffer.from(text)]);

describe('FrameReader', () => {
  it('reads frames cut anywhere, and raw bytes with a tty', () => {
    const got: string[] = [];
    const r = new FrameReader(false, (s, p) => got.push(`${s}:${p}`));
    const all = Buffer.concat([frame(1, 'out\n'), frame(2, 'err'), frame(1, '')]);
    for (let i = 0; i < all.length; i += 3) r.push(all.subarray(i, i + 3));
    expect(got).toEqual(['stdout:out\n', 'stderr:err', 'stdout:']);
    expect(r.pending).toBe(0);
    const raw: string[] = [];
    new FrameReader(true, (s, p) => raw.push(`${s}:${p}`)).push(Buffer.from('\x01\x00abc'));
    expect(raw).toEqual(['stdout:\x01\x00abc']);
  });
});

describe('LogLines', () => {
  it('one entry per frame, with its time; a frame without a newline is partial', () => {
    const l = new LogLines(false);
    expect(l.push('stdout', Buffer.from('2026-01-01T00:00:00.000000001Z hello world\n'))).toEqual([{ time: '2026-01-01T00:00:00.000000001Z', stream: 'stdout', line: 'hello world', partial: false }]);
    expect(l.push('stderr', Buffer.from('2026-01-01T00:00:01Z no newline'))).toEqual([{ time: '2026-01-01T00:00:01Z', stream: 'stderr', line: 'no newline', partial: true }]);
  });

  it('a tty stream is cut at newlines across chunks; the rest is partial at the end', () => {
    const l = new LogLines(true);
    expect(l.push('stdout', Buffer.from('2026-01-01T00:00:00Z a\n2026-01-01T00:00:00Z b'))).toEqual([{ time: '2026-01-01T00:00:00Z', stream: 'stdout', line: 'a', partial: false }]);
    expect(l.push('stdout', Buffer.from('c\n'))).toEqual([{ time: '2026-01-01T00:00:00Z', stream: 'stdout', line: 'bc', partial: false }]);
    l.push('stdout', Buffer.from('2026-01-01T00:00:00Z tail'));
    expect(l.end()).toEqual([{ time: '2026-01-01T00:00:00Z', stream: 'stdout', line: 'tail', partial: true }]);
  });
});
