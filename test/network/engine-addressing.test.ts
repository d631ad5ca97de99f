import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rootTag } from '../../src/paths.js';
import { run } from '../../src/util/exec.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

/** Subnets 10.237.0.0/16 (this file's own), links berthb12*; engine slots 3050-3059. */
let t: TestEngine | undefined;
const links: string[] = [];

afterEach(async () => {
  try {
    await t?.cleanup();
  } finally {
    t = undefined;
    for (const l of links.splice(0)) await run('ip', ['link', 'del', l]).catch(() => {});
  }
});

describe('addressing through the engine and the CLI', () => {
  it('takes bip, mtu and default-address-pools from the configuration file and shows them in info', async () => {
    const config = { bip: '10.237.5.1/24', mtu: 1400, 'default-address-pools': [{ base: '10.237.128.0/17', size: 24 }] };
    t = await testEngine(3050, { config });
    const file = path.join(t.root, 'berth.json');
    await writeFile(file, JSON.stringify(config));
    const before = await t.engine.system.info();
    expect(before.DefaultAddressPools).toEqual([{ Base: '10.237.128.0/17', Size: 24 }]);
    await t.engine.containers.run({ image: 'busybox', name: 'web', command: ['sleep', '300'] }, { detach: true });
    const info = await t.engine.system.info();
    expect(info.DefaultBridge).toMatchObject({ Subnet: '10.237.5.0/24', Gateway: '10.237.5.1', MTU: 1400, SubnetPending: false, Bip: '10.237.5.1/24' });
    expect(info.Warnings).toEqual([]);
    const bridgeName = (info.DefaultBridge as { Name: string }).Name;
    expect((await run('ip', ['-o', '-4', 'addr', 'show', 'dev', bridgeName])).stdout).toContain('10.237.5.1/24');
    await t.engine.networks.create({ name: 'auto' });
    expect((await t.engine.networks.inspect('auto')).subnets[0]!.subnet).toBe('10.237.128.0/24');

    // network inspect: the Linux bridge among the options, as Docker shows it
    const r = await t.cli('--config', file, 'network', 'inspect', '--format', '{{index .Options "com.docker.network.bridge.name"}}', 'bridge');
    expect(r.stdout.trim()).toBe(bridgeName);
    const text = await t.cli('--config', file, 'info');
    expect(text.stdout).toContain('Base: 10.237.128.0/17, Size: 24');
    expect(text.stdout).toContain(`Default Bridge: ${bridgeName}`);

    // ip netns: the container under the root's tag and its name; gone with it
    const ns = `berth-${rootTag(t.root).slice(0, 8)}-web`;
    expect((await run('ip', ['netns', 'list'])).stdout).toContain(ns);
    const pid = (await t.engine.containers.inspect('web')).State.Pid;
    expect((await run('ip', ['netns', 'identify', String(pid)])).stdout.trim()).toBe(ns);
    await t.engine.containers.remove('web', { force: true });
    expect(existsSync(`/run/netns/${ns}`)).toBe(false);
  });

  it('refuses a --subnet over a host route unless --allow-host-overlap, naming the route', async () => {
    t = await testEngine(3051);
    await run('ip', ['link', 'add', 'berthb12e', 'type', 'veth', 'peer', 'name', 'berthb12f']);
    links.push('berthb12e');
    await run('ip', ['addr', 'add', '10.237.9.1/24', 'dev', 'berthb12e']);
    await run('ip', ['link', 'set', 'berthb12e', 'up']);
    const refused = await t.cli('network', 'create', '--subnet', '10.237.9.0/25', 'over');
    expect(refused.exitCode).toBe(1); // docker network create's code for a refused request
    expect(refused.stderr).toContain('10.237.9.0/25 is already used on the host: route 10.237.9.0/24 dev berthb12e');
    const forced = await t.cli('network', 'create', '--subnet', '10.237.9.0/25', '--allow-host-overlap', 'over');
    expect(forced.stderr).toBe('');
    expect(forced.exitCode).toBe(0);
  });
});
