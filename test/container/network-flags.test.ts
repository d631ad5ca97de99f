/**
 * Issue 8, item 5: --dns, --dns-search, --dns-option and --add-host become lines of the container's
 * resolv.conf and hosts, so the engine (not only the CLI) refuses values that would add lines of their own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import type { NetworkRequest } from '../../src/options.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

let t: TestEngine;
beforeAll(async () => { t = await testEngine(3100); });
afterAll(async () => t?.cleanup());

describe('network flags at create', () => {
  const bad: [string, NetworkRequest][] = [
    ['--dns-search with a newline', { dnsSearch: ['corp.example\nnameserver 10.241.0.9'] }],
    ['--dns-option with a newline', { dnsOption: ['ndots:1\nnameserver 10.241.0.9'] }],
    ['--dns-option with a blank', { dnsOption: ['ndots:1 rotate'] }],
    ['--add-host with a newline in the name', { addHost: ['db\n10.241.0.9 evil:10.241.0.8'] }],
    ['--add-host with "deadbeef" for an address', { addHost: ['db:deadbeef'] }],
    ['--dns with "deadbeef" for an address', { dns: ['deadbeef'] }],
  ];
  for (const [what, network] of bad) {
    it(`refuses ${what}, leaving no container`, async () => {
      const err = await t.engine.containers.create({ image: 'busybox', command: ['true'], network }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(await t.engine.containers.list({ all: true })).toEqual([]);
    });
  }
});
