import { describe, expect, it } from 'vitest';
import { ClusterNotConfiguredError, InvalidArgumentError } from '../errors.js';
import { clusterSettings, openCluster } from './index.js';
import { keys, networkIdOf } from './keys.js';
import { checkFlannelConfig, subnetCount } from './leases.js';
import { parseAdvertise, parseClusterStoreUri, parseStoreOpts } from './settings.js';
import { prefixEnd } from './store.js';

describe('parseClusterStoreUri', () => {
  it('takes one or several endpoints, plain or TLS', () => {
    expect(parseClusterStoreUri('etcd://10.0.0.5:2379')).toEqual({
      kind: 'etcd', tls: false, text: 'etcd://10.0.0.5:2379', endpoints: [{ host: '10.0.0.5', port: 2379, url: 'http://10.0.0.5:2379' }],
    });
    const many = parseClusterStoreUri('etcds://h1.example.com:2379,h2:2380,[fd00::1]:2379/');
    expect(many.tls).toBe(true);
    expect(many.endpoints.map((e) => e.url)).toEqual(['https://h1.example.com:2379', 'https://h2:2380', 'https://[fd00::1]:2379']);
    expect(parseClusterStoreUri('ETCD://localhost:1').endpoints[0]!.url).toBe('http://localhost:1');
  });

  it.each([
    ['', /empty/],
    ['10.0.0.5:2379', /not a URI with a scheme/],
    ['http://10.0.0.5:2379', /scheme "http" is not supported/],
    ['consul://10.0.0.5:8500', /Berth speaks only to etcd/],
    ['zk://h:2181', /scheme "zk"/],
    ['etcd://10.0.0.5', /has no port/],
    ['etcd://10.0.0.5:', /port "" .* not a number/],
    ['etcd://10.0.0.5:0', /port "0"/],
    ['etcd://10.0.0.5:65536', /port "65536"/],
    ['etcd://10.0.0.5:99999999', /port "99999999"/],
    ['etcd://10.0.0.5:-1', /port "-1"/],
    ['etcd://10.0.0.5:23a', /port "23a"/],
    ['etcd://:2379', /has no host/],
    ['etcd://', /an endpoint is empty/],
    ['etcd://h1:2379,', /an endpoint is empty/],
    ['etcd://h1:2379,,h2:2379', /an endpoint is empty/],
    ['etcd://h1:2379,h1:2379', /given twice/],
    ['etcd://h 1:2379', /spaces/],
    [' etcd://h1:2379', /spaces/],
    ['etcd://h1:2379\n', /control characters/],
    ['etcd://user:secret@h1:2379', /credentials in the URI are refused/],
    ['etcd://h1:2379/prefix', /a path is not supported/],
    ['etcd://h1:2379?x=1', /query/],
    ['etcd://10.0.0.256:2379', /not an IP address or a host name/],
    ['etcd://-bad-:2379', /not an IP address or a host name/],
    ['etcd://h_1:2379', /not an IP address or a host name/],
    ['etcd://fd00::1:2379', /IPv6 address in brackets/],
    ['etcd://[fd00::1:2379', /does not close it/],
    ['etcd://[nothex]:2379', /not an IPv6 address/],
    ['etcd://[fd00::1]x:2379', /text after the IPv6 address/],
    ['etcd://' + Array.from({ length: 17 }, (_, i) => `h${i}:1`).join(','), /more than 16 endpoints/],
  ])('refuses %j', (uri, why) => {
    let err: unknown;
    try {
      parseClusterStoreUri(uri);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toMatch(/^invalid --cluster-store: /);
    expect((err as InvalidArgumentError).hint).not.toBe('');
  });

  it('says where credentials go instead, and does not print the password back', () => {
    expect(() => parseClusterStoreUri('etcd://u:p@h:1')).toThrow(expect.objectContaining({ hint: expect.stringMatching(/kv\.username.*kv\.password/) }));
    expect(() => parseClusterStoreUri('etcd://admin:s3cret@h:1')).toThrow('"etcd://***@h:1"');
  });
});

describe('parseAdvertise', () => {
  it('takes an address or an interface, with or without a port', () => {
    expect(parseAdvertise('10.0.0.5')).toMatchObject({ kind: 'address', value: '10.0.0.5', port: undefined });
    expect(parseAdvertise('10.0.0.5:2376')).toMatchObject({ kind: 'address', value: '10.0.0.5', port: 2376 });
    expect(parseAdvertise('eth0')).toMatchObject({ kind: 'interface', value: 'eth0' });
    expect(parseAdvertise('enp0s3:2376')).toMatchObject({ kind: 'interface', value: 'enp0s3', port: 2376 });
    expect(parseAdvertise('veth-a.10')).toMatchObject({ kind: 'interface', value: 'veth-a.10' });
  });

  it.each([
    ['', /empty/],
    ['eth 0', /spaces/],
    ['../etc', /slashes/],
    ['10.0.0.5:0', /port "0"/],
    ['10.0.0.5:70000', /port "70000"/],
    ['eth0:x', /port "x"/],
    ['10.0.0.300', /not an IPv4 address/],
    ['0.0.0.0', /not a unicast address/],
    ['239.1.1.1', /not a unicast address/],
    ['fd00::1', /IPv6/],
    ['averyveryverylongifname', /at most 15 characters/],
    ['-x', /neither an IPv4 address nor an interface name/],
  ])('refuses %j', (text, why) => {
    expect(() => parseAdvertise(text)).toThrow(InvalidArgumentError);
    expect(() => parseAdvertise(text)).toThrow(why);
  });
});

describe('parseStoreOpts and clusterSettings', () => {
  const tlsUri = parseClusterStoreUri('etcds://h:2379');
  it('takes Docker\'s kv.* names', () => {
    expect(parseStoreOpts({ 'kv.cacertfile': '/ca.pem', 'kv.certfile': '/c.pem', 'kv.keyfile': '/k.pem', 'kv.username': 'u', 'kv.password': 'p' }, tlsUri))
      .toEqual({ 'kv.cacertfile': '/ca.pem', 'kv.certfile': '/c.pem', 'kv.keyfile': '/k.pem', 'kv.username': 'u', 'kv.password': 'p' });
  });
  it.each([
    [{ 'kv.path': '/x' }, /unknown option "kv.path"/],
    [{ 'kv.cacertfile': 'ca.pem' }, /absolute path/],
    [{ 'kv.certfile': '/c.pem' }, /go together/],
    [{ 'kv.username': 'u' }, /go together/],
    [{ 'kv.password': 5 }, /non-empty string/],
  ])('refuses %j', (opts, why) => {
    expect(() => parseStoreOpts(opts as Record<string, unknown>, tlsUri)).toThrow(why);
  });
  it('refuses TLS files with a plain etcd:// store', () => {
    expect(() => parseStoreOpts({ 'kv.cacertfile': '/ca.pem' }, parseClusterStoreUri('etcd://h:1'))).toThrow(/is plain etcd:\/\//);
  });
  it('refuses an advertise address without a store', () => {
    expect(() => clusterSettings({ advertise: '10.0.0.5' })).toThrow(/no cluster store is/);
    expect(clusterSettings({})).toEqual({ store: undefined, advertise: undefined, opts: {} });
  });
});

describe('openCluster', () => {
  it('without a store, refuses global-scope work with a message that says what to set; connects to nothing', async () => {
    const access = openCluster(clusterSettings({}));
    expect(access.configured).toBe(false);
    expect(() => access.require('overlay networks')).toThrow(ClusterNotConfiguredError);
    const err = await access.store().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toBe('multi-host networks need a cluster store: set --cluster-store etcd://HOST:PORT (or BERTH_CLUSTER_STORE, or "cluster-store" in the config file)');
    await expect(access.advertise()).rejects.toBeInstanceOf(ClusterNotConfiguredError);
  });
  it('with a store and no advertise address, says to set one', async () => {
    const access = openCluster(clusterSettings({ store: 'etcd://127.0.0.1:1' }));
    expect(access.configured).toBe(true);
    await expect(access.advertise()).rejects.toThrow(/--cluster-advertise/);
    expect(await openCluster(clusterSettings({ store: 'etcd://h:1', advertise: '10.1.2.3:7946' })).advertise()).toEqual({ address: '10.1.2.3', port: 7946 });
  });
});

describe('keys', () => {
  it('lays keys out under /berth/v1 and flannel\'s under /berth/flannel', () => {
    expect(keys.host('h1')).toBe('/berth/v1/hosts/h1');
    expect(keys.network('abc')).toBe('/berth/v1/networks/abc');
    expect(keys.endpoint('abc', 'ep1')).toBe('/berth/v1/networks/abc/endpoints/ep1');
    expect(keys.address('abc', '10.70.0.2')).toBe('/berth/v1/networks/abc/ipam/10.70.0.2');
    expect(keys.vni(4097)).toBe('/berth/v1/vni/4097');
    expect(keys.flannel('abc')).toBe('/berth/flannel/abc');
    expect(networkIdOf(keys.network('abc'))).toBe('abc');
    expect(networkIdOf(keys.endpoint('abc', 'e'))).toBeUndefined();
    expect(networkIdOf(keys.addressHint('abc'))).toBeUndefined();
  });
  it.each(['a/b', '', '..', 'x y'])('refuses the segment %j', (id) => {
    expect(() => keys.network(id)).toThrow(InvalidArgumentError);
  });
  it('ends a prefix range after the prefix', () => {
    expect(prefixEnd(Buffer.from('/a/')).toString()).toBe('/a0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect([...prefixEnd(Buffer.from([0xff]))]).toEqual([0]);
  });
});

describe('checkFlannelConfig', () => {
  it('fills in flannel\'s defaults', () => {
    const c = checkFlannelConfig({ Network: '10.70.0.0/16' });
    expect(c.subnetLen).toBe(24);
    // The first subnet (the network's own address) is skipped, as flannel's SubnetMin.
    expect(c.min).toBe(c.network.base + 256);
    expect(subnetCount({ Network: '10.70.0.0/16', SubnetLen: 24 })).toBe(255);
    expect(checkFlannelConfig({ Network: '10.70.0.0/24' }).subnetLen).toBe(26);
  });
  it.each([
    [{ Network: '10.70.0.1/16' }, /host bits/],
    [{ Network: '10.70.0.0/16', SubnetLen: 16 }, /must be longer/],
    [{ Network: '10.70.0.0/16', SubnetLen: 31 }, /at most 30/],
    [{ Network: '10.70.0.0/16', SubnetLen: 24, SubnetMin: '10.71.0.0' }, /not inside/],
    [{}, /"Network" is missing/],
  ])('refuses %j', (cfg, why) => {
    expect(() => checkFlannelConfig(cfg as never)).toThrow(why);
  });
});
