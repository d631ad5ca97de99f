import { describe, expect, it } from 'vitest';
import { inputFor } from '../../test/bundle/fixtures.js';
import { InvalidArgumentError } from '../errors.js';
import { buildSpec } from './spec.js';
import { validateSpec } from './validate.js';

const valid = () => structuredClone(buildSpec(inputFor({})).spec) as Record<string, any>;

describe('validateSpec (runtime-spec/config.schema.json)', () => {
  it('accepts what buildSpec generates', () => {
    expect(() => validateSpec(valid())).not.toThrow();
  });

  const broken: [string, (s: Record<string, any>) => void, string][] = [
    ['a missing process', (s) => delete s.process, '/process: is required'],
    ['a relative cwd', (s) => (s.process.cwd = 'srv'), '/process/cwd: must match pattern'],
    ['a relative mount destination', (s) => (s.mounts[0].destination = 'proc'), '/mounts/0/destination: must match pattern'],
    ['an unknown namespace type', (s) => (s.linux.namespaces[0].type = 'time-travel'), '/linux/namespaces/0/type: must be equal to one of the allowed values'],
    ['a capability without CAP_', (s) => (s.process.capabilities.bounding[0] = 'CHOWN'), '/process/capabilities/bounding/0: must match pattern'],
    ['a memory limit given as a string', (s) => (s.linux.resources.memory = { limit: '64m' }), '/linux/resources/memory/limit: must be integer'],
    ['a fractional CPU quota', (s) => (s.linux.resources.cpu = { quota: 0.5 }), '/linux/resources/cpu/quota: must be integer'],
    ['an env entry without =', (s) => s.process.env.push('JUSTANAME'), '/process/env/3: must match pattern'],
    ['a misspelled field', (s) => (s.linux.maskPaths = []), '/linux/maskPaths: is not allowed'],
    ['empty args', (s) => (s.process.args = []), '/process/args: must NOT have fewer than 1 items'],
  ];
  for (const [what, breakIt, message] of broken) {
    it(`refuses ${what}, naming the JSON pointer`, () => {
      const spec = valid();
      breakIt(spec);
      let error: unknown;
      try {
        validateSpec(spec);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toContain('invalid OCI config: ');
      expect((error as Error).message).toContain(message);
    });
  }
});

describe('runtime-spec/state.schema.json', () => {
  it('accepts what `runc state` prints and refuses an unknown status', async () => {
    const { Ajv } = await import('ajv');
    const schema = (await import('../../runtime-spec/state.schema.json', { with: { type: 'json' } })).default;
    const check = new Ajv({ strict: true }).compile(schema);
    const state = {
      ociVersion: '1.0.2-dev', id: 'web', pid: 4242, status: 'running', bundle: '/var/lib/berth/containers/web/bundle',
      rootfs: '/var/lib/berth/snapshots/web/merged', created: '2026-11-23T09:00:00Z', owner: '',
    };
    expect(check(state)).toBe(true);
    expect(check({ ...state, status: 'paused-ish' })).toBe(false);
  });
});
