import { describe, expect, it } from 'vitest';
import { applyChanges } from './changes.js';
import { checkImageConfig } from './config-check.js';

const diffId = `sha256:${'a'.repeat(64)}`;
const base = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } };

describe('checkImageConfig', () => {
  it('accepts a Docker config with its nulls and extra fields', () => {
    expect(checkImageConfig({
      ...base, created: '2024-01-02T03:04:05.123456789Z', container_config: { Cmd: 'anything' }, docker_version: '20.10',
      config: { Hostname: '', User: '', Env: ['PATH=/bin'], Cmd: ['sh'], Entrypoint: null, Volumes: null, Labels: null, OnBuild: null, ExposedPorts: { '80/tcp': {} },
        Healthcheck: { Test: ['CMD', 'true'], Interval: 30_000_000_000 } },
      history: [{ created: '2024-01-02T03:04:05Z', created_by: '/bin/sh', empty_layer: true }],
    })).toEqual([]);
  });

  it.each([
    ['Cmd as a string', { config: { Cmd: 'echo x' } }, 'config.Cmd must be a list of strings, not a string ("echo x")'],
    ['Entrypoint with a number', { config: { Entrypoint: ['sh', 1] } }, 'config.Entrypoint must be a list of strings, not a list (["sh",1])'],
    ['Env as an object', { config: { Env: { A: '1' } } }, 'config.Env must be a list of strings, not an object ({"A":"1"})'],
    ['Labels with a number', { config: { Labels: { a: 1 } } }, 'config.Labels must be an object of strings, not an object ({"a":1})'],
    ['ExposedPorts as a list', { config: { ExposedPorts: ['80/tcp'] } }, 'config.ExposedPorts must be an object whose values are {}, not a list (["80/tcp"])'],
    ['User as a number', { config: { User: 0 } }, 'config.User must be a string, not a number (0)'],
    ['config as a string', { config: 'x' }, 'config must be an object, not a string ("x")'],
    ['no architecture', { architecture: undefined }, 'architecture is missing; it must be a string'],
    ['a bad created time', { created: 'yesterday' }, 'created must be an RFC 3339 date-time string, not a string ("yesterday")'],
    ['diff_ids that are not digests', { rootfs: { type: 'layers', diff_ids: ['x'] } }, 'rootfs.diff_ids must be a list of sha256 digests, not a list (["x"])'],
    ['empty_layer as a string', { history: [{ empty_layer: 'yes' }] }, 'history[0].empty_layer must be true or false, not a string ("yes")'],
  ])('refuses %s', (_what, patch, problem) => {
    expect(checkImageConfig({ ...base, ...patch })).toEqual([problem]);
  });

  it('accepts every config import --change can make', () => {
    const config = applyChanges({}, ['CMD echo x', 'ENTRYPOINT ["/bin/sh", "-c"]', 'ENV A=1 B="two words"', 'WORKDIR /w', 'USER nobody', 'EXPOSE 80 53/udp', 'LABEL k=v', 'VOLUME /data', 'STOPSIGNAL SIGINT']);
    expect(checkImageConfig({ ...base, config })).toEqual([]);
  });
});
