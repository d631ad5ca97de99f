import { afterEach, describe, expect, test } from 'vitest';
import { makeHosts, type Host, type Hosts } from '../helpers/hosts.js';

/**
 * Berth run inside a "host" network namespace with `nsenter --net`: /sys there still shows the machine's
 * links, so everything Berth learns of links must come from the netns itself.
 */

let hosts: Hosts | undefined;
afterEach(async () => {
  const h = hosts;
  hosts = undefined;
  await h?.remove();
});

/** A detached web server answering with `text`. */
async function serve(host: Host, name: string, text: string, ...opts: string[]): Promise<string> {
  return host.ok('run', '-d', '--name', name, ...opts, 'busybox', 'sh', '-c',
    `mkdir /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`);
}

async function fetchFrom(host: Host, url: string): Promise<string> {
  // busybox wget -T segfaults (MACHINE-NOTES.md): timeout bounds it instead.
  const r = await host.exec(['timeout', '10', 'busybox', 'wget', '-q', '-O-', url]);
  return r.exitCode === 0 ? r.stdout.trim() : `failed (${r.exitCode}): ${r.stderr}`;
}

async function ipOf(host: Host, name: string, network: string): Promise<string> {
  return host.ok('inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name);
}

describe('berth in a host netns', () => {
  test('default bridge and a user network with published ports, reached from inside the host; reset leaves it clean', async () => {
    hosts = await makeHosts(1);
    const [h] = hosts.hosts as [Host];
    await serve(h, 'web1', 'one', '-p', '8081:80');
    // A second container finds the bridge already made: the path that asks whether a link exists and is ours.
    await serve(h, 'web2', 'two', '-p', '8082:80');
    await h.ok('network', 'create', '--subnet', '10.77.0.0/24', 'appnet');
    await serve(h, 'web3', 'three', '--network', 'appnet', '-p', '8083:80');
    await h.ok('run', '-d', '--name', 'idle', '--network', 'appnet', 'busybox', 'sleep', '1d');

    expect(await fetchFrom(h, `http://${h.address}:8081/`)).toBe('one');
    expect(await fetchFrom(h, `http://${h.address}:8082/`)).toBe('two');
    expect(await fetchFrom(h, `http://${h.address}:8083/`)).toBe('three');
    expect(await fetchFrom(h, `http://${await ipOf(h, 'web3', 'appnet')}/`)).toBe('three');
    // The user network's DNS (dnsmasq on its gateway, in the host's netns) answers by name.
    expect((await h.ok('exec', 'idle', 'wget', '-q', '-O-', 'http://web3/'))).toBe('three');
    // Nothing of it is in the machine's own netns: Berth made its objects where it runs.
    const bridges = (await h.exec(['ip', '-o', 'link', 'show', 'type', 'bridge'])).stdout;
    expect(bridges).toMatch(/berth/);
    expect((await h.exec(['iptables-save'])).stdout).toMatch(/BERTH/);
    // Removal, a short-lived container and a firewall reload work there too. The bridge keeps its own
    // MAC whichever ports come and go: were it a port's, removing that container would leave the others'
    // ARP entries for the gateway pointing at nothing, and web1 unreachable for half a minute.
    const macs = async () => (await h.exec(['ip', '-br', 'link'])).stdout.split('\n').map((l) => l.trim().split(/\s+/));
    const bridgeMacNow = async () => (await macs()).find(([n]) => n!.startsWith('berth') && !n!.includes('@'))![2];
    const before = await bridgeMacNow();
    expect((await macs()).filter(([n]) => n!.includes('@if') && !n!.startsWith('eth0')).map((l) => l[2])).not.toContain(before);
    await h.ok('rm', '-f', 'web2');
    expect(await h.ok('run', '--rm', 'busybox', 'echo', 'short')).toBe('short');
    await h.ok('network', 'reload', '--all');
    expect(await bridgeMacNow()).toBe(before);
    expect(await fetchFrom(h, `http://${h.address}:8081/`)).toBe('one');
    expect(await fetchFrom(h, `http://${h.address}:8082/`)).toMatch(/^failed/);
    // hosts.remove() runs system reset in the host and fails on any link, rule or record left.
  }, 120_000);

  test('two hosts run two roots with the same bridge name and subnet side by side', async () => {
    hosts = await makeHosts(2);
    const [a, b] = hosts.hosts as [Host, Host];
    for (const h of [a, b]) {
      await h.ok('network', 'create', '--subnet', '10.78.0.0/24', '-o', 'com.docker.network.bridge.name=berthsame', 'same');
      await serve(h, 'web', h.name, '--network', 'same', '--ip', '10.78.0.10', '-p', '8080:80');
    }
    for (const h of [a, b]) {
      expect(await fetchFrom(h, 'http://10.78.0.10/')).toBe(h.name);
      expect(await fetchFrom(h, `http://${h.address}:8080/`)).toBe(h.name);
    }
    // Across the underlay each host's published port answers with its own container.
    expect(await fetchFrom(a, `http://${b.address}:8080/`)).toBe(b.name);
    expect(await fetchFrom(b, `http://${a.address}:8080/`)).toBe(a.name);
  }, 120_000);

  test('dual stack in a host netns (new links there start with IPv6 off): gateway, names, a port on [::1] via the proxy', async () => {
    hosts = await makeHosts(1);
    const [h] = hosts.hosts as [Host];
    await h.ok('network', 'create', '--ipv6', '--subnet', '10.79.0.0/24', '--subnet', 'fd00:79::/64', 'v6');
    await serve(h, 'web6', 'six', '--network', 'v6', '-p', '[::1]:8090:80');
    expect(await h.ok('run', '--rm', '--network', 'v6', 'busybox', 'sh', '-c', 'ping -c1 -W2 fd00:79::1 >/dev/null && wget -q -O- http://web6/')).toBe('six');
    expect(await fetchFrom(h, 'http://[::1]:8090/')).toBe('six');
  }, 120_000);
});
