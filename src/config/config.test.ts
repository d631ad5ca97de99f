import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { loadConfig, parseConfig, usernsRemapMode } from './index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'berth-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('parseConfig', () => {
  it('takes every documented key', () => {
    const cfg = {
      'data-root': '/srv/berth', 'exec-root': '/run/b2', bridge: 'berth7', mtu: 1400, 'iptables-chain-prefix': 'BERTH7',
      runtimes: { wrapped: { path: '/usr/local/bin/wrapped-runc' } }, 'default-runtime': 'wrapped',
      bip: '10.233.7.1/24', 'default-address-pools': [{ base: '10.234.0.0/16', size: 24 }, { base: '10.235.0.0/16', size: 26 }],
      'insecure-registries': ['reg.example:5000', '10.0.0.0/8'], 'registry-mirrors': ['https://mirror.example.com'],
      mirrors: { 'quay.io': ['quay-mirror.example:5000'] }, 'unqualified-search-registries': ['reg.example:5000', 'docker.io'],
      'certs-dirs': ['/srv/certs.d'],
      'cluster-store': 'etcds://10.0.0.5:2379,10.0.0.6:2379', 'cluster-advertise': 'eth0:2376',
      'cluster-store-opts': { 'kv.cacertfile': '/etc/berth/ca.pem', 'kv.certfile': '/etc/berth/c.pem', 'kv.keyfile': '/etc/berth/k.pem', 'kv.username': 'berth', 'kv.password': 'pw' },
      'storage-driver': 'fuse-overlayfs',
    };
    expect(parseConfig(cfg, 'x')).toEqual(cfg);
    expect(parseConfig({}, 'x')).toEqual({});
  });

  it.each([
    [{ 'data-rot': '/x' }, /x is not a valid Berth configuration: \/data-rot: is not allowed/],
    [{ 'data-root': 'relative' }, /\/data-root: must match pattern/],
    [{ mtu: '1500' }, /\/mtu: must be integer/],
    [{ 'storage-driver': 'vfs' }, /\/storage-driver: must be equal to one of the allowed values/],
    [{ mtu: 20 }, /\/mtu: must be >= 68/],
    [{ bridge: 'docker0' }, /\/bridge: must match pattern/],
    [{ 'iptables-chain-prefix': 'DOCKER' }, /must match pattern/],
    [{ runtimes: { x: { path: 'relative' } } }, /\/runtimes\/x\/path: must match pattern/],
    [{ runtimes: { x: { path: '/x', runtimeArgs: ['--debug'] } } }, /runtimeArgs: is not allowed/],
    [{ runtimes: { 'bad name': { path: '/x' } } }, /property name must be valid|must match pattern/],
    [{ runtimes: { runc: { path: '/x' } } }, /runtime name "runc" is reserved/],
    [{ 'default-runtime': 'nosuch' }, /default-runtime "nosuch" is not runc and not a key of runtimes/],
    [{ bip: '10.1.0.0/24' }, /bip: 10.1.0.0\/24: 10.1.0.0 is the network or broadcast address/],
    [{ bip: '10.1.0.300/24' }, /"10.1.0.300\/24" is not an IPv4 address with a prefix/],
    [{ 'default-address-pools': [{ base: '10.1.0.0/16' }] }, /\/default-address-pools\/0\/size: is required/],
    [{ 'default-address-pools': [{ base: '10.1.0.0/16', size: 8 }] }, /10.1.0.0\/16 size 8: the size must be from 16/],
    [{ 'default-address-pools': [{ base: '10.1.0.1/16', size: 24 }] }, /10.1.0.1\/16/],
    [{ 'default-address-pools': [] }, /must NOT have fewer than 1 items/],
    [{ 'insecure-registries': ['http://reg.example'] }, /x: invalid insecure-registries: "http:\/\/reg.example" should not contain ":\/\/"/],
    [{ 'insecure-registries': ['10.0.0.0/40'] }, /"10.0.0.0\/40" is not a CIDR/],
    [{ 'insecure-registries': ['reg example'] }, /not a registry host|not HOST\[:PORT\]/],
    [{ 'registry-mirrors': ['mirror.example.com'] }, /\/registry-mirrors\/0: must match pattern/],
    [{ 'registry-mirrors': ['https://mirror.example.com/v2/'] }, /a mirror is a scheme and host only/],
    [{ 'unqualified-search-registries': ['https://docker.io'] }, /unqualified-search-registries: "https:\/\/docker.io" should not contain/],
    [{ mirrors: { 'quay.io': 'x' } }, /\/mirrors\/quay.io: must be array/],
    [{ 'certs-dirs': ['certs.d'] }, /\/certs-dirs\/0: must match pattern/],
    [[], /must be object/],
    ['{}', /must be object/],
  ])('refuses %j, naming what is wrong', (value, message) => {
    expect(() => parseConfig(value, 'x')).toThrow(message);
    expect(() => parseConfig(value, 'x')).toThrow(InvalidArgumentError);
  });

  it.each([
    [{ 'cluster-store': 'consul://h:8500' }, /f.json: invalid cluster-store: "consul:\/\/h:8500": the scheme "consul" is not supported/],
    [{ 'cluster-store': 'etcd://u:p@h:2379' }, /credentials in the URI are refused/],
    [{ 'cluster-store': 'etcd://h' }, /has no port/],
    [{ 'cluster-store': '' }, /\/cluster-store: must NOT have fewer than 1 characters/],
    [{ 'cluster-advertise': 'eth 0' }, /f.json: invalid cluster-advertise: .*spaces/],
    [{ 'cluster-store': 'etcd://h:2379', 'cluster-store-opts': { 'kv.cacertfile': '/ca.pem' } }, /is plain etcd:\/\//],
    [{ 'cluster-store-opts': { 'kv.path': '/x' } }, /\/cluster-store-opts\/kv.path: is not allowed/],
    [{ 'cluster-store-opts': { 'kv.username': 'u' } }, /kv.username and kv.password go together/],
  ])('refuses the cluster keys %j', (value, message) => {
    expect(() => parseConfig(value, 'f.json')).toThrow(message);
    expect(() => parseConfig(value, 'f.json')).toThrow(InvalidArgumentError);
  });

  it('refuses a Docker key that Berth does not implement yet, by name, instead of ignoring it', () => {
    expect(() => parseConfig({ 'log-driver': 'syslog', 'fixed-cidr': '10.1.0.0/25' }, 'f.json'))
      .toThrow(/f.json: "log-driver" is not supported by this version of Berth .*; "fixed-cidr" is not supported/);
  });

  it('takes userns-remap "default" as --userns auto for every container, and refuses a user name', () => {
    const config = parseConfig({ 'userns-remap': 'default' }, 'f.json');
    expect(usernsRemapMode(config)).toEqual({ kind: 'auto', size: 65536 });
    expect(usernsRemapMode({})).toBeUndefined();
    expect(() => parseConfig({ 'userns-remap': 'someone' }, 'f.json')).toThrow(/f.json: userns-remap "someone" is not supported: Berth takes only "default"/);
    expect(() => parseConfig({ 'userns-remap': 3 }, 'f.json')).toThrow(InvalidArgumentError);
  });
});

describe('loadConfig', () => {
  it('reads and checks a named file', () => {
    expect(loadConfig(file('ok.json', '{"data-root": "/srv/berth"}'))).toEqual({ 'data-root': '/srv/berth' });
  });

  it('reports a named file that is missing, or not JSON, with its path', () => {
    expect(() => loadConfig(path.join(dir, 'none.json'))).toThrow(`cannot read the configuration file ${path.join(dir, 'none.json')}: ENOENT`);
    const bad = file('bad.json', '{"data-root": ');
    expect(() => loadConfig(bad)).toThrow(`${bad} is not valid JSON`);
  });
});
