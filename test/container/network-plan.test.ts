/**
 * Issue 9: every network flag Docker refuses at create is refused by `create` (the network layer's
 * plan), before any record, name or snapshot exists; before, most were found only at start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import type { NetworkRequest } from '../../src/options.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

let t: TestEngine;
beforeAll(async () => { t = await testEngine(3600); });
afterAll(async () => t?.cleanup());

describe('network flags refused at create', () => {
  const bad: [string, NetworkRequest, typeof InvalidArgumentError | typeof NotFoundError][] = [
    ['-p 70000:80', { publish: ['70000:80'] }, InvalidArgumentError],
    ['-p 18960:80 -p 18960:81', { publish: ['18960:80', '18960:81'] }, InvalidArgumentError],
    ['--ip on the default bridge', { ip: '10.88.0.9' }, InvalidArgumentError],
    ['--ip6 without an IPv6 subnet', { ip6: 'fd00::9' }, InvalidArgumentError],
    ['--mac-address that is no MAC', { mac: 'nope' }, InvalidArgumentError],
    ['--network-alias on the default bridge', { aliases: ['web'] }, InvalidArgumentError],
    ['-p with --network host', { networks: ['host'], publish: ['80'] }, InvalidArgumentError],
    ['--network host with another network', { networks: ['host', 'bridge'] }, InvalidArgumentError],
    ['--network nosuch', { networks: ['nosuch'] }, NotFoundError],
  ];
  for (const [what, network, kind] of bad) {
    it(`refuses ${what}, leaving no container`, async () => {
      const err = await t.engine.containers.create({ image: 'busybox', command: ['true'], network }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(kind);
      expect(await t.engine.containers.list({ all: true })).toEqual([]);
    });
  }
});
