import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import type { NetworkRequest } from '../options.js';
import { planNetwork } from './plan.js';
import type { NetworkRecord, PlanContext } from './types.js';

const rec = (name: string, driver: string, over: Partial<NetworkRecord> = {}): NetworkRecord => ({
  id: `${name.padEnd(4, '0')}`.replace(/[^0-9a-f]/g, 'e').padEnd(64, '0').slice(0, 64), name, driver, created: '', internal: false, ipv6: false,
  options: {}, labels: {}, dns: driver === 'bridge' && name !== 'bridge', driverOptions: {}, ...over,
});
const NETS: NetworkRecord[] = [
  rec('bridge', 'bridge', { builtin: true, ipam: { subnet: '10.232.50.0/24', gateway: '10.232.50.1' } }),
  rec('host', 'host', { builtin: true }),
  rec('none', 'none', { builtin: true }),
  rec('app', 'bridge', { ipv6: true, ipam: { subnet: '10.231.200.0/24', gateway: '10.231.200.1', ipRange: '10.231.200.128/25' }, ipam6: { subnet: 'fd42:7e57:32::/64', gateway: 'fd42:7e57:32::1' } }),
  rec('back', 'bridge', { ipam: { subnet: '10.231.201.0/24', gateway: '10.231.201.1' } }),
  rec('inner', 'bridge', { internal: true, ipam: { subnet: '10.231.202.0/24', gateway: '10.231.202.1' } }),
];
const CTX: PlanContext = { exposedPorts: [] };
const plan = (req: NetworkRequest, ctx: Partial<PlanContext> = {}) => planNetwork(req, { ...CTX, ...ctx }, NETS);

/** What an error says after the house prefix ("invalid FIELD: "), where Docker's words are. */
function said(err: Error): string {
  return err instanceof InvalidArgumentError ? err.message.slice(`invalid ${err.field}: `.length) : err.message;
}

/** The error `plan` throws, for checks of its class and Docker's words. */
function refusal(req: NetworkRequest, ctx: Partial<PlanContext> = {}): Error {
  try {
    plan(req, ctx);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`plan accepted ${JSON.stringify(req)}`);
}

describe('plan refuses at create what Docker refuses at create', () => {
  it.each<[string, NetworkRequest, RegExp]>([
    ['-p 70000:80', { publish: ['70000:80'] }, /^invalid hostPort: 70000/],
    ['-p [::1]:8080:80 without IPv6', { publish: ['[::1]:8080:80'] }, /^\[::1\]:8080:80: network bridge has no IPv6 subnet/],
    ['-p 99999:80', { publish: ['99999:80'] }, /^invalid hostPort: 99999/],
    ['-p 80:0', { publish: ['80:0'] }, /^invalid containerPort: 0/],
    ['--ip that is no address', { networks: ['app'], ip: '10.231.200.300' }, /^invalid IPv4 address: 10\.231\.200\.300/],
    ['--ip outside the subnet', { networks: ['app'], ip: '10.231.99.5' }, /^no configured subnet or ip-range contain the IP address 10\.231\.99\.5/],
    ['--ip of the broadcast address', { networks: ['app'], ip: '10.231.200.255' }, /^no configured subnet/],
    ['--ip of the gateway', { networks: ['app'], ip: '10.231.200.1' }, /is the gateway of network app/],
    ['--ip on the default bridge', { ip: '10.232.50.9' }, /^user specified IP address is supported on user defined networks only$/],
    ['--ip with --network host', { networks: ['host'], ip: '10.232.50.9' }, /^user specified IP address is supported on user defined networks only$/],
    ['--ip6 without an IPv6 subnet', { networks: ['back'], ip6: 'fd42:7e57:32::9' }, /network back has no IPv6 subnet/],
    ['--ip6 outside the subnet', { networks: ['app'], ip6: 'fd42:7e57:33::9' }, /^no configured subnet or ip-range contain the IP address/],
    ['--ip6 that is IPv4', { networks: ['app'], ip6: '10.231.200.9' }, /^invalid IPv6 address/],
    ['--dns deadbeef', { dns: ['deadbeef'] }, /is not an IP address/],
    ['--dns-search with a newline', { dnsSearch: ['a.example\nnameserver 10.0.0.1'] }, /is not a valid domain/],
    ['--add-host without an address', { addHost: ['db'] }, /is not NAME:IP/],
    ['--add-host with a bad address', { addHost: ['db:10.0.0.300'] }, /is not an IP address/],
    ['--add-host host-gateway with --network none', { networks: ['none'], addHost: ['gw:host-gateway'] }, /no gateway/],
    ['--mac-address that is no MAC', { mac: '02:42:zz:00:00:01' }, /^02:42:zz:00:00:01 is not a valid mac address$/],
    ['--mac-address with --network host', { networks: ['host'], mac: '02:42:ac:11:00:02' }, /^conflicting options: mac-address and the network mode$/],
    ['-p 18530:80 -p 18530:81', { publish: ['18530:80', '18530:81'] }, /^Bind for 0\.0\.0\.0:18530 failed: port is already allocated$/],
    ['-p 18530:80 -p 127.0.0.1:18530:81 (one container per host port)', { publish: ['18530:80', '127.0.0.1:18530:81'] }, /^Bind for 127\.0\.0\.1:18530 failed: port is already allocated$/],
    ['--network-alias on the default bridge', { aliases: ['web'] }, /^network-scoped alias is supported only for containers in user defined networks$/],
    ['--network-alias with --network host', { networks: ['host'], aliases: ['web'] }, /^network-scoped alias is supported only for containers in user defined networks$/],
    ['--network-alias with --network none', { networks: ['none'], aliases: ['web'] }, /^network-scoped alias/],
    ['--network-alias with a blank', { networks: ['app'], aliases: ['a b'] }, /is not a valid alias/],
    ['-p with --network host', { networks: ['host'], publish: ['80'] }, /^conflicting options: port publishing and the container type network mode$/],
    ['-p with --network none', { networks: ['none'], publish: ['8080:80'] }, /^conflicting options: port publishing and the container type network mode$/],
    ['-P with --network none', { networks: ['none'], publishAll: true }, /^conflicting options: port publishing and the container type network mode$/],
    ['--network host and another', { networks: ['host', 'app'] }, /^container sharing network namespace with another container or host cannot be connected to any other network$/],
    ['--network none and another', { networks: ['app', 'none'] }, /^container cannot be connected to multiple networks with one of the networks in private \(none\) mode$/],
    ['one network twice', { networks: ['app', 'app'] }, /^network "app" is specified multiple times$/],
    ['-p on an internal network only', { networks: ['inner'], publish: ['80'] }, /bridge network that is not internal/],
  ])('%s', (_what, req, message) => {
    const err = refusal(req);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(said(err)).toMatch(message);
  });

  it('--network container:X refuses ports, other networks, --dns, --add-host, --mac-address and links', () => {
    const shared = { sharedWith: 'a'.repeat(64) };
    const link = { links: [{ id: 'b'.repeat(64), name: 'db', alias: 'db' }] };
    const cases: [NetworkRequest, Partial<PlanContext>, RegExp][] = [
      [{ networks: ['container:x'], publish: ['80'] }, shared, /^conflicting options: port publishing and the container type network mode$/],
      [{ networks: ['container:x'], publishAll: true }, shared, /^conflicting options: port publishing/],
      [{ networks: ['container:x', 'app'] }, shared, /^container sharing network namespace/],
      [{ networks: ['container:x'], dns: ['10.0.0.2'] }, shared, /^conflicting options: dns and the network mode$/],
      [{ networks: ['container:x'], addHost: ['db:10.0.0.9'] }, shared, /^conflicting options: custom host-to-IP mapping and the network mode$/],
      [{ networks: ['container:x'], mac: '02:42:ac:11:00:02' }, shared, /^conflicting options: mac-address and the network mode$/],
      [{ networks: ['container:x'], aliases: ['web'] }, shared, /^network-scoped alias/],
      [{ networks: ['container:x'], ip: '10.231.200.9' }, shared, /^user specified IP address/],
      [{ networks: ['container:x'] }, { ...shared, ...link }, /^conflicting options: container type network can't be used with links/],
      [{ networks: ['host'] }, link, /^conflicting options: host type networking can't be used with links/],
      [{ networks: ['container:x'] }, {}, /not resolved/],
    ];
    for (const [req, ctx, message] of cases) {
      const err = refusal(req, ctx);
      expect(err, JSON.stringify(req)).toBeInstanceOf(InvalidArgumentError);
      expect(said(err), JSON.stringify(req)).toMatch(message);
    }
  });

  it('-P with a bad ExposedPorts in the image', () => {
    for (const key of ['80/sctpx', 'abc', '0/tcp', '70000/udp']) {
      const err = refusal({ publishAll: true }, { exposedPorts: ['443/tcp', key] });
      expect(err, key).toBeInstanceOf(InvalidArgumentError);
      expect(said(err), key).toMatch(new RegExp(`^-P: the image exposes "${key}"`));
    }
    // Without -P the image's ports are never published, so they are not read either (as Docker).
    expect(plan({}, { exposedPorts: ['abc'] }).ports).toEqual([]);
  });

  it('an unknown network is NotFoundError', () => {
    const err = refusal({ networks: ['nosuch'] });
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.message).toBe('no such network: nosuch');
    expect(refusal({ networks: ['app', 'nosuch'] })).toBeInstanceOf(NotFoundError);
  });
});

describe('plan keeps what stays valid', () => {
  it('port ranges, an ephemeral host port on one address, and -P', () => {
    const p = plan({ publish: ['8000-8001:80-81', '127.0.0.1::80/udp'], publishAll: true }, { exposedPorts: ['80/tcp', '53/udp', '9000-9001/tcp'] });
    expect(p.ports.map((r) => `${r.hostIp}:${r.hostPorts ? `${r.hostPorts.first}-${r.hostPorts.last}` : '*'}->${r.containerPort}/${r.protocol}`)).toEqual([
      '0.0.0.0:8000-8000->80/tcp', '0.0.0.0:8001-8001->81/tcp', '127.0.0.1:*->80/udp', '0.0.0.0:*->53/udp', '0.0.0.0:*->9000/tcp', '0.0.0.0:*->9001/tcp',
    ]);
    expect(plan({ networks: ['app'], publish: ['[::1]:8080:80'] }).ports).toEqual([{ hostIp: '::1', hostPorts: { first: 8080, last: 8080 }, containerPort: 80, protocol: 'tcp' }]);
    // The same host port on two protocols is two ports.
    expect(plan({ publish: ['18530:53/tcp', '18530:53/udp'] }).ports).toHaveLength(2);
  });

  it('the default: the built-in bridge, as a network with its id', () => {
    const p = plan({});
    expect(p).toEqual({
      mode: { kind: 'networks', networks: [{ name: 'bridge', id: NETS[0]!.id }] },
      aliases: [], ports: [], dns: [], dnsSearch: [], dnsOptions: [], extraHosts: [], links: [],
    });
    expect(JSON.parse(JSON.stringify(p))).toEqual(p);
  });

  it('--ip and --ip6 inside a user subnet (outside its ip-range too, as Docker), aliases and a MAC on a user network', () => {
    const p = plan({ networks: ['app', 'back'], ip: '10.231.200.7', ip6: 'FD42:7E57:32:0::9', aliases: ['web', 'www'], mac: '02:42:AC:11:00:02' });
    expect(p.mode).toEqual({ kind: 'networks', networks: [{ name: 'app', id: NETS[3]!.id }, { name: 'back', id: NETS[4]!.id }] });
    expect(p).toMatchObject({ ip: '10.231.200.7', ip6: 'fd42:7e57:32::9', aliases: ['web', 'www'], mac: '02:42:ac:11:00:02' });
  });

  it('host, none and container:X modes; names and links kept', () => {
    expect(plan({ networks: ['host'], dns: ['10.0.0.2'], addHost: ['db:10.0.0.9'] })).toMatchObject({ mode: { kind: 'host' }, dns: ['10.0.0.2'], extraHosts: ['db:10.0.0.9'] });
    expect(plan({ networks: ['none'] }).mode).toEqual({ kind: 'none' });
    expect(plan({ networks: ['container:x'] }, { sharedWith: 'a'.repeat(64) }).mode).toEqual({ kind: 'container', id: 'a'.repeat(64) });
    const links = [{ id: 'b'.repeat(64), name: 'db', alias: 'database' }];
    expect(plan({ addHost: ['gw:host-gateway'], dnsOption: ['ndots:1'] }, { links })).toMatchObject({ links, extraHosts: ['gw:host-gateway'], dnsOptions: ['ndots:1'] });
  });
});

describe('rootless (issue 18)', () => {
  const rootless = { rootless: { unprivilegedPortStart: 1024 } };

  it('gives a container slirp4netns by default, and host or none when asked', () => {
    expect(plan({}, rootless).mode).toEqual({ kind: 'slirp4netns' });
    expect(plan({ networks: ['none'] }, rootless).mode).toEqual({ kind: 'none' });
    expect(plan({ networks: ['host'] }, rootless).mode).toEqual({ kind: 'host' });
  });

  it('refuses bridge networks, saying why', () => {
    for (const networks of [['bridge'], ['app'], ['slirp4netns', 'back']]) {
      const err = refusal({ networks }, rootless);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toMatch(/rootless Berth cannot attach containers to network "(bridge|app|back)": bridge networks need iptables/);
    }
  });

  it('publishes on the loopback unless an address is named, never below ip_unprivileged_port_start', () => {
    expect(plan({ publish: ['18080:80', '10.1.2.3:18081:81'] }, rootless).ports.map((p) => p.hostIp)).toEqual(['127.0.0.1', '10.1.2.3']);
    expect(refusal({ publish: ['80:80'] }, rootless).message).toContain('host port 80 is below 1024, the first port a non-root user may bind on this host (net.ipv4.ip_unprivileged_port_start)');
    expect(plan({ publish: ['80:80'] }, { rootless: { unprivilegedPortStart: 0 } }).ports[0]!.hostPorts).toEqual({ first: 80, last: 80 });
    expect(refusal({ publish: ['[::1]:18080:80'] }, rootless).message).toContain('IPv4 ports only');
  });
});
