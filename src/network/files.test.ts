import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { containerResolvConf, parseAddHost, parseResolvConf, renderHosts, renderResolvConf, checkNameFlags } from './files.js';

const HOST = parseResolvConf('# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0 ndots:2\n');

describe('hosts file', () => {
  it('renders the Docker head, extra entries, then the container itself', () => {
    const text = renderHosts([{ ip: '10.0.0.9', names: ['db'] }], [{ ip: '10.231.1.2', names: ['web.example', 'web', 'web'] }]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('127.0.0.1\tlocalhost');
    expect(lines[1]).toBe('::1\tlocalhost ip6-localhost ip6-loopback');
    expect(lines.slice(-2)).toEqual(['10.0.0.9\tdb', '10.231.1.2\tweb.example web']);
  });

  it('parses --add-host forms', () => {
    expect(parseAddHost('db:10.0.0.9', undefined)).toEqual({ ip: '10.0.0.9', names: ['db'] });
    expect(parseAddHost('db=10.0.0.9', undefined)).toEqual({ ip: '10.0.0.9', names: ['db'] });
    expect(parseAddHost('gw:host-gateway', '10.1.0.1')).toEqual({ ip: '10.1.0.1', names: ['gw'] });
    expect(parseAddHost('v6:::1', undefined)).toEqual({ ip: '::1', names: ['v6'] });
    for (const bad of ['db', ':1.2.3.4', 'db:nothost', 'gw:host-gateway']) expect(() => parseAddHost(bad, undefined)).toThrow(InvalidArgumentError);
  });
});

describe('resolv.conf', () => {
  it('parses the host file', () => {
    expect(HOST).toEqual({ nameservers: ['127.0.0.53', '10.255.255.53'], search: ['corp.example'], options: ['edns0', 'ndots:2'] });
  });

  it('keeps the host servers without loopback ones on the default bridge', () => {
    expect(renderResolvConf(containerResolvConf(HOST, {}, undefined))).toBe('nameserver 10.255.255.53\nsearch corp.example\noptions edns0 ndots:2\n');
  });

  it('falls back to Docker public servers when only loopback ones exist', () => {
    expect(containerResolvConf(parseResolvConf('nameserver 127.0.0.1\n'), {}, undefined).nameservers).toEqual(['8.8.8.8', '8.8.4.4']);
  });

  it('points at the embedded resolver, and lets flags override', () => {
    expect(containerResolvConf(HOST, {}, '10.231.1.1').nameservers).toEqual(['10.231.1.1']);
    const conf = containerResolvConf(HOST, { dns: ['10.9.9.9'], dnsSearch: ['.'], dnsOptions: ['ndots:1'] }, '10.231.1.1');
    expect(conf).toEqual({ nameservers: ['10.9.9.9'], search: [], options: ['ndots:1'] });
    expect(() => containerResolvConf(HOST, { dns: ['nope'] }, undefined)).toThrow(InvalidArgumentError);
  });
});

describe('request checks (Docker: opts.ValidateDNSSearch, ValidateIPAddress, ValidateExtraHost)', () => {
  it('takes what Docker takes', () => {
    expect(() => checkNameFlags({
      dns: ['10.0.0.2', 'fd00::53'], dnsSearch: ['corp.example', 'a.b-c.example.', '.'], dnsOptions: ['ndots:2', 'no-aaaa', 'timeout:1'],
      extraHosts: ['db:10.0.0.9', 'v6=::1', 'b:[fd00::1]', 'gw:host-gateway'],
    })).not.toThrow();
    expect(parseAddHost('b:[fd00::1]', undefined)).toEqual({ ip: 'fd00::1', names: ['b'] });
  });

  it.each([
    [{ dns: ['deadbeef'] }, /dns/], [{ dns: ['10.0.0.2\nnameserver 10.0.0.3'] }, /dns/], [{ dns: ['fe80::1%eth0'] }, /dns/],
    [{ dnsSearch: ['x.example\nnameserver 10.0.0.3'] }, /dns-search/], [{ dnsSearch: ['-bad.example'] }, /dns-search/], [{ dnsSearch: ['a b'] }, /dns-search/],
    [{ dnsOptions: ['ndots:1\nnameserver 10.0.0.3'] }, /dns-option/], [{ dnsOptions: [''] }, /dns-option/], [{ dnsOptions: ['a#b'] }, /dns-option/],
    [{ extraHosts: ['db:deadbeef'] }, /add-host/], [{ extraHosts: ['d b:10.0.0.9'] }, /add-host/], [{ extraHosts: ['db\n10.0.0.8 x:10.0.0.9'] }, /add-host/],
  ])('refuses %j', (req, field) => {
    expect(() => checkNameFlags(req)).toThrow(InvalidArgumentError);
    expect(() => checkNameFlags(req)).toThrow(expect.objectContaining({ field: expect.stringMatching(field) }));
  });
});
