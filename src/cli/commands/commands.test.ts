import { describe, expect, it } from 'vitest';
import { COMMANDS, resolveCommand } from './index.js';
import { parseTail, statsRow } from './containers.js';
import { historyRow } from './images.js';
import { eventLine, eventMessage } from './system.js';

describe('command table', () => {
  it('resolves management forms and shortcuts to the same command', () => {
    const same = (a: string[], b: string[]) => {
      const x = resolveCommand(a);
      const y = resolveCommand(b);
      expect(x.kind === 'command' && y.kind === 'command' && x.command === y.command).toBe(true);
    };
    same(['ps'], ['container', 'ls']);
    same(['container', 'list'], ['container', 'ps']);
    same(['images'], ['image', 'ls']);
    same(['rmi'], ['image', 'rm']);
    same(['info'], ['system', 'info']);
    same(['events'], ['system', 'events']);
    same(['run'], ['container', 'run']);
    same(['load'], ['image', 'load']);
  });

  it('keeps the rest of argv after the command words', () => {
    expect(resolveCommand(['container', 'run', '-d', 'x'])).toMatchObject({ kind: 'command', invokedAs: 'container run', rest: ['-d', 'x'] });
    expect(resolveCommand(['network'])).toMatchObject({ kind: 'group', group: 'network' });
    expect(resolveCommand(['nope'])).toMatchObject({ kind: 'unknown', invokedAs: 'nope' });
  });

  it('has the hidden commands the engine and the tests call', () => {
    expect(resolveCommand(['container', 'cleanup', 'id'])).toMatchObject({ kind: 'command', rest: ['id'] });
    expect(resolveCommand(['image', 'default'])).toMatchObject({ kind: 'command' });
    expect(resolveCommand(['system', 'cluster-agent', '--ttl', '5'])).toMatchObject({ kind: 'command', rest: ['--ttl', '5'] });
  });

  it('declares each option name once per command', () => {
    for (const c of COMMANDS) {
      const longs = c.options.flatMap((o) => [o.name, ...(o.aliases ?? [])]);
      const shorts = c.options.flatMap((o) => (o.short ? [o.short] : []));
      expect(new Set(longs).size, `${c.group ?? ''} ${c.name}`).toBe(longs.length);
      expect(new Set(shorts).size, `${c.group ?? ''} ${c.name}`).toBe(shorts.length);
    }
  });
});

describe('command formatters', () => {
  it('parses --tail', () => {
    expect(parseTail(undefined)).toBeUndefined();
    expect(parseTail('all')).toBe('all');
    expect(parseTail('5')).toBe(5);
    expect(parseTail('-1')).toBe('all');
    expect(() => parseTail('x')).toThrow('--tail');
  });

  it('prints stats like docker', () => {
    expect(statsRow({
      id: 'f'.repeat(64), name: 'web', cpuPercent: 1.234, memoryUsage: 1_572_864, memoryLimit: 67_108_864, memoryPercent: 2.34375,
      netRx: 1234, netTx: 0, blockRead: 4_260_000, blockWrite: 0, pids: 3,
    })).toEqual({
      Container: 'ffffffffffff', ID: 'ffffffffffff', Name: 'web', CPUPerc: '1.23%', MemUsage: '1.5MiB / 64MiB', MemPerc: '2.34%',
      NetIO: '1.23kB / 0B', BlockIO: '4.26MB / 0B', PIDs: '3',
    });
  });

  it('prints history rows, human and not', () => {
    const h = { id: 'sha256:' + 'e'.repeat(64), created: '2024-01-01T00:00:00Z', createdBy: '/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789 in /', size: 4_260_000, comment: 'c', emptyLayer: false };
    expect(historyRow(h, { trunc: true, human: true, now: Date.parse('2024-01-01T01:00:00Z') })).toEqual([
      'eeeeeeeeeeee', 'About an hour ago', '/bin/sh -c #(nop) ADD file:0123456789abcdef0…', '4.26MB', 'c',
    ]);
    expect(historyRow({ ...h, id: '<missing>' }, { trunc: false, human: false })).toEqual(['<missing>', h.created, h.createdBy, '4260000', 'c']);
  });

  it('prints events as docker does', () => {
    const e = { time: '2024-01-01T00:00:00.123456789Z', type: 'container' as const, action: 'start', id: 'abc', attributes: { name: 'web', image: 'busybox' } };
    expect(eventLine(e)).toBe('2024-01-01T00:00:00.123456789Z container start abc (image=busybox, name=web)');
    expect(eventMessage(e)).toEqual({
      status: 'start', id: 'abc', from: 'busybox', Type: 'container', Action: 'start', Actor: { ID: 'abc', Attributes: e.attributes },
      scope: 'local', time: 1704067200, timeNano: '1704067200123456789',
    });
  });
});
