import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BadStateError } from '../errors.js';
import { HostPorts } from './hostports.js';

let dir: string | undefined;
afterEach(async () => { if (dir) await rm(dir, { recursive: true, force: true }); dir = undefined; });

describe('HostPorts.reserve', () => {
  it('never gives one owner a host port twice within one reservation (a range after a fixed port)', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-hostports-'));
    const ports = new HostPorts(path.join(dir, 'ports'), path.join(dir, 'ports.lock'));
    // The range starts at a random port: before the fix, half of the tries picked 18954 again.
    for (let i = 0; i < 12; i++) {
      const got = await ports.reserve('c1', [
        { hostIp: '127.0.0.1', hostPorts: { first: 18954, last: 18954 }, containerPort: 80, protocol: 'tcp' },
        { hostIp: '127.0.0.1', hostPorts: { first: 18954, last: 18955 }, containerPort: 81, protocol: 'tcp' },
      ]);
      expect(got.map((b) => b.hostPort)).toEqual([18954, 18955]);
      await ports.releaseWhere((o) => o !== 'c1');
    }
  });

  it('refuses one fixed host port twice in one reservation', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-hostports-'));
    const ports = new HostPorts(path.join(dir, 'ports'), path.join(dir, 'ports.lock'));
    const err = await ports.reserve('c1', [
      { hostIp: '127.0.0.1', hostPorts: { first: 18956, last: 18956 }, containerPort: 81, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPorts: { first: 18956, last: 18956 }, containerPort: 80, protocol: 'tcp' },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadStateError);
    expect((err as Error).message).toBe('Bind for 127.0.0.1:18956 failed: port is already allocated');
    expect(await ports.releaseWhere(() => false)).toEqual([]);
  });
});
