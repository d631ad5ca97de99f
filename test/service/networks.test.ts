/**
 * The networks endpoints driven by the real docker CLI (DOCKER_HOST at Berth's service), its output and
 * exit codes compared with Berth's own CLI on the same store, and by hand-written hostile requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { linkExists, OCTET, SLOT } from './networks-helpers.js';

const k = OCTET;
/** This file's own subnets and bridge names (test/network/helpers.ts keeps 10.231-10.237 for itself). */
const subnet = (i: number) => `10.238.${k}.${i * 64}/26`;
const bridge = (i: number) => `berthnv${process.pid % 100000}${i}`;

describe('networks through the Engine API', () => {
  let t: TestEngine;
  let svc: TestService;
  beforeAll(async () => {
    t = await testEngine(SLOT);
    svc = await startService(t);
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await cleanupAll(t);
    for (const i of [0, 1, 2, 3, 4]) expect(linkExists(bridge(i)), bridge(i)).toBe(false);
  }, 60_000);

  it('docker network create, ls and inspect answer as Berth\'s CLI does', async () => {
    const made = await svc.docker(['network', 'create', '--subnet', subnet(0), '--label', 'team=nv', '--label', 'tier=front', '-o', `com.docker.network.bridge.name=${bridge(0)}`, 'nv-front']);
    expect(made.exitCode, made.stderr as string).toBe(0);
    expect(made.stdout).toMatch(/^[0-9a-f]{64}$/);
    expect(linkExists(bridge(0))).toBe(true);
    await t.ok('network', 'create', '--subnet', subnet(1), '--label', 'team=other', '-o', `com.docker.network.bridge.name=${bridge(1)}`, 'nv-back');

    for (const args of [['network', 'ls'], ['network', 'ls', '--filter', 'label=team=nv'], ['network', 'ls', '-q', '--filter', 'name=nv-'], ['network', 'ls', '--no-trunc', '--filter', 'driver=bridge']]) {
      const [d, b] = [await svc.docker(args), await t.cli(...args)];
      expect(d.exitCode, `${args.join(' ')}: ${d.stderr}`).toBe(0);
      // The docker CLI sorts the rows by name; Berth's CLI keeps the engine's order: the same rows.
      const rows = (out: unknown) => String(out).trimEnd().split('\n').sort();
      expect(rows(d.stdout), args.join(' ')).toEqual(rows(b.stdout));
    }
    // Docker's filter rule: two names are alternatives, two labels must both match.
    const either = await svc.docker(['network', 'ls', '--format', '{{.Name}}', '--filter', 'name=nv-front', '--filter', 'name=nv-back']);
    expect(either.stdout).toBe('nv-back\nnv-front');
    expect((await t.cli('network', 'ls', '--format', '{{.Name}}', '--filter', 'name=nv-front', '--filter', 'name=nv-back')).stdout.trim().split('\n').sort()).toEqual(['nv-back', 'nv-front']);
    const both = await svc.docker(['network', 'ls', '--format', '{{.Name}}', '--filter', 'label=team=nv', '--filter', 'label=tier']);
    expect(both.stdout).toBe('nv-front');
    expect((await svc.docker(['network', 'ls', '-q', '--filter', 'label=team=nv', '--filter', 'label=tier=back'])).stdout).toBe('');
    const ls = await svc.docker(['network', 'ls', '--filter', 'label=team=nv', '--format', '{{.Name}} {{.Label "tier"}}']);
    expect(ls.stdout).toBe('nv-front front');

    const d = await svc.docker(['network', 'inspect', 'nv-front']);
    const b = await t.cli('network', 'inspect', 'nv-front');
    expect(d.exitCode).toBe(0);
    const [docker] = JSON.parse(d.stdout as string);
    const [berth] = JSON.parse(b.stdout);
    // Docker's answer has the swarm fields a local daemon gives at their defaults; Berth's CLI view has not.
    expect(docker.ConfigFrom).toEqual({ Network: '' });
    expect(docker.ConfigOnly).toBe(false);
    delete docker.ConfigFrom;
    delete docker.ConfigOnly;
    expect(docker).toEqual(berth);
    expect(docker.IPAM).toEqual({ Driver: 'default', Options: {}, Config: [{ Subnet: subnet(0), Gateway: `10.238.${k}.1` }] });
    expect(docker.Labels).toEqual({ team: 'nv', tier: 'front' });

    const f = await svc.docker(['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}} {{index .Labels "team"}}', 'nv-front', 'nv-back']);
    expect(f.stdout).toBe('nv-front bridge local nv\nnv-back bridge local other');
    const missing = [await svc.docker(['network', 'inspect', 'nv-nothing']), await t.cli('network', 'inspect', 'nv-nothing')];
    expect(missing.map((r) => r.exitCode)).toEqual([1, 1]);
    expect(missing[0]!.stderr).toMatch(/network nv-nothing not found|No such network: nv-nothing/);

    // A name taken: Docker's words and status (409), exit 1 from both CLIs, and nothing more made.
    const again = [await svc.docker(['network', 'create', 'nv-front']), await t.cli('network', 'create', 'nv-front')];
    expect(again.map((r) => r.exitCode)).toEqual([1, 1]);
    expect(again[0]!.stderr).toContain('network with name nv-front already exists');
    const raw = await svc.request('POST', '/networks/create', { Name: 'nv-front' });
    expect(raw.status).toBe(409);

    for (const name of ['nv-front', 'nv-back']) {
      const rm = await svc.docker(['network', 'rm', name]);
      expect(rm.exitCode).toBe(0);
      expect(rm.stdout).toBe(name);
    }
    expect(linkExists(bridge(0)) || linkExists(bridge(1))).toBe(false);
    expect((await svc.docker(['network', 'ls', '-q', '--filter', 'name=nv-'])).stdout).toBe('');
  }, 120_000);

  it('connects and disconnects a container made through the engine; a network in use is not removed', async () => {
    expect((await svc.docker(['network', 'create', '--subnet', subnet(2), '-o', `com.docker.network.bridge.name=${bridge(2)}`, 'nv-app'])).exitCode).toBe(0);
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'nv-web', command: ['sleep', '300'] }, { detach: true });
    try {
      const con = await svc.docker(['network', 'connect', '--alias', 'frontdoor', '--ip', `10.238.${k}.140`, 'nv-app', 'nv-web']);
      expect(con.exitCode, con.stderr as string).toBe(0);
      const net = JSON.parse((await svc.docker(['network', 'inspect', 'nv-app'])).stdout as string)[0];
      expect(Object.keys(net.Containers)).toEqual([id]);
      expect(net.Containers[id]).toMatchObject({ Name: 'nv-web', IPv4Address: `10.238.${k}.140/26` });
      expect(net.Containers[id].MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      // The container really has the address: its own view of its interfaces.
      const info = await t.engine.containers.inspect(id);
      expect(JSON.stringify(info.NetworkSettings)).toContain(`10.238.${k}.140`);
      // GET /networks since API 1.28 leaves Containers out; the network's own inspect has them.
      const list = (await svc.request('GET', '/networks?filters=' + encodeURIComponent(JSON.stringify({ name: ['nv-app'] })))).json();
      expect(list).toHaveLength(1);
      expect(list[0].Containers).toEqual({});
      const dangling = (await svc.request('GET', '/networks?filters=' + encodeURIComponent(JSON.stringify({ dangling: ['true'] })))).json();
      expect(dangling.map((n: { Name: string }) => n.Name)).not.toContain('nv-app');

      // Docker refuses with 403 and these words; the docker CLI exits 1, as Berth's does.
      const rm = [await svc.docker(['network', 'rm', 'nv-app']), await t.cli('network', 'rm', 'nv-app')];
      expect(rm.map((r) => r.exitCode)).toEqual([1, 1]);
      expect(rm[0]!.stderr).toMatch(/error while removing network: network nv-app id [0-9a-f]{64} has active endpoints/);
      expect((await svc.request('DELETE', '/networks/nv-app')).status).toBe(403);
      expect(linkExists(bridge(2))).toBe(true);
      // prune leaves a network in use alone
      expect((await svc.docker(['network', 'prune', '-f'])).stdout).toBe('');

      const dis = await svc.docker(['network', 'disconnect', 'nv-app', 'nv-web']);
      expect(dis.exitCode, dis.stderr as string).toBe(0);
      expect(JSON.parse((await svc.docker(['network', 'inspect', 'nv-app'])).stdout as string)[0].Containers).toEqual({});
      const twice = await svc.docker(['network', 'disconnect', 'nv-app', 'nv-web']);
      expect(twice.exitCode).toBe(1);
      const nobody = await svc.docker(['network', 'connect', 'nv-app', 'nv-nobody']);
      expect(nobody.exitCode).toBe(1);
      expect(nobody.stderr).toContain('No such container: nv-nobody');
    } finally {
      await t.engine.containers.remove(id, { force: true });
    }
    expect((await svc.docker(['network', 'rm', 'nv-app'])).exitCode).toBe(0);
  }, 120_000);

  it('docker network prune -f removes unused networks, as Berth\'s CLI prints it', async () => {
    for (const [i, name, label] of [[3, 'nv-old', 'keep=no'], [1, 'nv-keep', 'keep=yes']] as const) {
      expect((await svc.docker(['network', 'create', '--subnet', subnet(i), '--label', label, '-o', `com.docker.network.bridge.name=${bridge(i)}`, name])).exitCode).toBe(0);
    }
    const some = await svc.docker(['network', 'prune', '-f', '--filter', 'label=keep=no']);
    expect(some.exitCode).toBe(0);
    // The docker CLI ends its list with a blank line.
    expect(some.stdout).toBe('Deleted Networks:\nnv-old\n');
    expect(linkExists(bridge(3))).toBe(false);
    const rest = await svc.request('POST', '/networks/prune');
    expect(rest.status).toBe(200);
    expect(rest.json()).toEqual({ NetworksDeleted: ['nv-keep'] });
    expect(String((await svc.docker(['network', 'ls', '-q'])).stdout).split('\n')).toHaveLength(3);
  }, 120_000);

  it('shows only the options a network was made with, as compose compares them with its file', async () => {
    const made = await svc.request('POST', '/networks/create', { Name: 'nv-plain', Options: { 'com.docker.network.driver.mtu': '1400' }, Labels: { 'com.docker.compose.network': 'plain' } });
    expect(made.status, made.body.toString()).toBe(201);
    try {
      const net = (await svc.request('GET', '/networks/nv-plain')).json();
      // Berth named the bridge itself; Docker would not list it, and compose would call the network changed.
      expect(net.Options).toEqual({ 'com.docker.network.driver.mtu': '1400' });
      const bridgeNet = (await svc.request('GET', '/networks/bridge')).json();
      expect(bridgeNet.Options['com.docker.network.bridge.name']).toMatch(/^berth/);
    } finally {
      expect((await svc.request('DELETE', '/networks/nv-plain')).status).toBe(204);
    }
  });

  it('maps the docker CLI\'s --ipv6, --internal, --ip-range, --gateway and connect --ip6; refuses by name what Berth lacks', async () => {
    const v4 = `10.239.${k}.64/26`;
    const v6 = `fd42:7e59:${k.toString(16)}::/64`;
    const made = await svc.docker(['network', 'create', '--ipv6', '--internal', '--subnet', v4, '--ip-range', `10.239.${k}.96/27`, '--gateway', `10.239.${k}.126`, '--subnet', v6, '-o', `com.docker.network.bridge.name=${bridge(4)}`, 'nv-six']);
    expect(made.exitCode, made.stderr as string).toBe(0);
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'nv-six-user', command: ['sleep', '300'] }, { detach: true });
    try {
      const net = JSON.parse((await svc.docker(['network', 'inspect', 'nv-six'])).stdout as string)[0];
      expect([net.EnableIPv6, net.Internal]).toEqual([true, true]);
      expect(net.IPAM.Config).toEqual([
        { Subnet: v4, IPRange: `10.239.${k}.96/27`, Gateway: `10.239.${k}.126` },
        { Subnet: v6, Gateway: `fd42:7e59:${k.toString(16)}::1` },
      ]);
      const refused: [string[], string][] = [
        [['network', 'create', '--subnet', `10.239.${k}.128/26`, '--aux-address', `host=10.239.${k}.130`, 'nv-aux'], 'IPAM.Config[0].AuxiliaryAddresses is not supported yet'],
        [['network', 'create', '--ipam-driver', 'dhcp', 'nv-dhcp'], 'IPAM.Driver "dhcp" is not supported yet'],
        [['network', 'create', '--attachable', '--ingress', 'nv-ingress'], 'Ingress is not supported yet'],
        [['network', 'connect', '--link', 'nv-six-user:other', 'nv-six', 'nv-six-user'], 'EndpointConfig.Links is not supported yet'],
        [['network', 'connect', '--driver-opt', 'a=b', 'nv-six', 'nv-six-user'], 'EndpointConfig.DriverOpts is not supported yet'],
      ];
      for (const [args, message] of refused) {
        const r = await svc.docker(args);
        expect(r.exitCode, args.join(' ')).toBe(1);
        expect(r.stderr, args.join(' ')).toContain(message);
      }
      const con = await svc.docker(['network', 'connect', '--ip6', `fd42:7e59:${k.toString(16)}::99`, 'nv-six', 'nv-six-user']);
      expect(con.exitCode, con.stderr as string).toBe(0);
      const member = JSON.parse((await svc.docker(['network', 'inspect', '-f', '{{json .Containers}}', 'nv-six'])).stdout as string)[id];
      expect(member.IPv6Address).toBe(`fd42:7e59:${k.toString(16)}::99/64`);
      expect(member.IPv4Address).toMatch(new RegExp(`^10\\.239\\.${k}\\.(9[6-9]|1[01][0-9]|12[0-6])/26$`));
      expect((await svc.docker(['network', 'disconnect', '-f', 'nv-six', 'nv-six-user'])).exitCode).toBe(0);
    } finally {
      await t.engine.containers.remove(id, { force: true });
    }
    expect((await svc.docker(['network', 'rm', 'nv-six'])).exitCode).toBe(0);
    expect((await svc.docker(['network', 'ls', '-q', '--filter', 'name=nv-'])).stdout).toBe('');
  }, 120_000);

  describe('bad input', () => {
    const networkNames = async () => (await t.engine.networks.list()).map((n) => n.name).sort();

    it('answers each with 400 and what was wrong, makes nothing and keeps serving', async () => {
      const before = await networkNames();
      const cases: [unknown, RegExp][] = [
        ['{"Name": "nv-x", ', /not valid JSON/],
        ['[1,2]', /must be a JSON object/],
        [{}, /Name is required/],
        [{ Name: 5 }, /Name must be a string, not a number/],
        [{ Name: 'nv-x', Labels: { a: 1 } }, /Labels\["a"\] must be a string/],
        [{ Name: 'nv-x', Attachable: 'yes' }, /Attachable must be a boolean/],
        [{ Name: 'nv-x', Ingress: true }, /Ingress is not supported yet/],
        [{ Name: 'nv-x', ConfigFrom: { Network: 'other' } }, /ConfigFrom is not supported yet/],
        [{ Name: 'nv-x', Scope: 'swarm' }, /Scope "swarm" is not supported/],
        [{ Name: 'nv-x', IPAM: { Driver: 'dhcp' } }, /IPAM.Driver "dhcp" is not supported yet/],
        [{ Name: 'nv-x', IPAM: { Options: { a: 'b' } } }, /IPAM.Options is not supported yet/],
        [{ Name: 'nv-x', IPAM: { Config: [{ Subnet: subnet(0), AuxiliaryAddresses: { h: `10.238.${k}.5` } }] } }, /IPAM.Config\[0\].AuxiliaryAddresses is not supported yet/],
        [{ Name: 'nv-x', IPAM: { Config: [{ Gateway: '10.238.0.1' }] } }, /IPAM.Config\[0\].Subnet is missing/],
        [{ Name: 'nv-x', IPAM: { Config: [{ Subnet: '10.238.0.300/24' }] } }, /subnet/i],
        [{ Name: 'nv x/../y' }, /network name/],
      ];
      for (const [body, message] of cases) {
        const res = await svc.request('POST', '/networks/create', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.json().message, JSON.stringify(body)).toMatch(message);
      }
      // An unknown driver is a missing plugin to Docker: 404.
      const driver = await svc.request('POST', '/networks/create', { Name: 'nv-x', Driver: 'overlay-nope' });
      expect([driver.status, driver.json().message]).toEqual([404, expect.stringMatching(/overlay-nope/)]);
      // Docker's own defaults, as docker-py and the docker CLI send them, are not refusals; nor is compose's
      // Attachable, which Docker gives no effect on a local network.
      const ok = await svc.request('POST', '/networks/create', {
        Name: 'nv-defaults', CheckDuplicate: true, Driver: null, Options: null, IPAM: null, Internal: false, Attachable: true, Ingress: false, ConfigOnly: false, ConfigFrom: null, EnableIPv6: false, Labels: null,
      });
      expect(ok.status, ok.body.toString()).toBe(201);
      expect(ok.json()).toEqual({ Id: expect.stringMatching(/^[0-9a-f]{64}$/), Warning: '' });
      expect((await svc.request('DELETE', '/networks/nv-defaults')).status).toBe(204);
      expect(await networkNames()).toEqual(before);
      expect((await svc.request('GET', '/_ping')).status).toBe(200);
    });

    it('an invalid subnet and an odd name fail in the docker CLI as in Berth\'s, with the same exit code', async () => {
      const before = await networkNames();
      for (const args of [['network', 'create', '--subnet', '10.238.0.300/24', 'nv-bad'], ['network', 'create', 'nv bad;$(x)'], ['network', 'create', '--subnet', '10.238.0.0/24', '--gateway', '10.99.0.1', 'nv-bad']]) {
        const [d, b] = [await svc.docker(args), await t.cli(...args)];
        expect(d.exitCode, `${args.join(' ')}: ${d.stderr}`).toBe(b.exitCode);
        expect(d.exitCode).not.toBe(0);
      }
      expect(await networkNames()).toEqual(before);
    });

    it('connect and disconnect refuse malformed bodies and endpoint settings Berth lacks', async () => {
      const cases: [string, unknown, number, RegExp][] = [
        ['/networks/bridge/connect', 'nope', 400, /not valid JSON/],
        ['/networks/bridge/connect', {}, 400, /Container is required/],
        ['/networks/bridge/connect', { Container: 'x', EndpointConfig: { Links: ['a:b'] } }, 400, /EndpointConfig.Links is not supported yet/],
        ['/networks/bridge/connect', { Container: 'x', EndpointConfig: { MacAddress: '02:42:ac:11:00:02' } }, 400, /EndpointConfig.MacAddress is not supported yet/],
        ['/networks/bridge/connect', { Container: 'x', EndpointConfig: { Aliases: 'web' } }, 400, /EndpointConfig.Aliases must be a list of strings/],
        ['/networks/bridge/connect', { Container: 'x', EndpointConfig: { IPAMConfig: { LinkLocalIPs: ['169.254.0.5'] } } }, 400, /EndpointConfig.IPAMConfig.LinkLocalIPs is not supported yet/],
        ['/networks/bridge/connect', { Container: 'nv-nobody' }, 404, /No such container: nv-nobody/],
        ['/networks/nv-nothing/connect', { Container: 'nv-nobody' }, 404, /No such/],
        ['/networks/bridge/disconnect', { Container: 'x', Force: 'yes' }, 400, /Force must be a boolean/],
      ];
      for (const [p, body, status, message] of cases) {
        const res = await svc.request('POST', p, body);
        expect(res.status, `${p} ${JSON.stringify(body)}`).toBe(status);
        expect(res.json().message, JSON.stringify(body)).toMatch(message);
      }
    });

    it('filters and scopes: unknown ones refused, swarm scope finds nothing', async () => {
      const q = (f: unknown) => '/networks?filters=' + encodeURIComponent(JSON.stringify(f));
      expect((await svc.request('GET', q({ scope: ['swarm'] }))).json()).toEqual([]);
      expect((await svc.request('GET', q({ scope: ['local'] }))).json()).toHaveLength(3);
      expect((await svc.request('GET', q({ dangling: ['maybe'] }))).status).toBe(400);
      expect((await svc.request('GET', q({ colour: ['red'] }))).status).toBe(400);
      expect((await svc.request('GET', '/networks?filters=%7Bnope')).status).toBe(400);
      expect((await svc.request('GET', '/networks/bridge?scope=swarm')).status).toBe(404);
      expect((await svc.request('GET', '/networks/bridge?scope=planet')).status).toBe(400);
      const bridgeNet = await svc.request('GET', '/networks/bridge?verbose=true&scope=local');
      expect(bridgeNet.status).toBe(200);
      expect(bridgeNet.json()).toMatchObject({ Name: 'bridge', Scope: 'local', Driver: 'bridge', Attachable: false, Ingress: false, ConfigOnly: false });
      expect((await svc.request('GET', '/networks/..%2F..%2Fetc')).status).toBe(404);
      const rm = await svc.request('DELETE', '/networks/host');
      expect(rm.status).toBe(403);
      expect(rm.json().message).toBe('host is a pre-defined network and cannot be removed');
    });
  });
});
