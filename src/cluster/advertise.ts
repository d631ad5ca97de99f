/**
 * The address this host advertises to the others (--cluster-advertise): given as an address, or as an
 * interface whose IPv4 address is read in the current network namespace (`ip -o -4 addr show dev X`;
 * /sys/class/net would show the interfaces of the namespace sysfs was mounted in, not necessarily ours).
 */
import { InvalidArgumentError } from '../errors.js';
import { run } from '../util/exec.js';
import type { AdvertiseSpec } from './settings.js';

export interface AdvertiseAddress {
  address: string;
  port?: number;
}

export async function resolveAdvertise(spec: AdvertiseSpec): Promise<AdvertiseAddress> {
  const port = spec.port === undefined ? {} : { port: spec.port };
  if (spec.kind === 'address') return { address: spec.value, ...port };
  let stdout: string;
  try {
    ({ stdout } = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', spec.value], { timeout: 10_000 }));
  } catch (err) {
    throw new InvalidArgumentError('--cluster-advertise', `"${spec.text}": there is no interface ${spec.value} on this host`,
      'give an interface that exists (ip -o link) or this host\'s address', { cause: err });
  }
  // "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0 ..." — the first global address.
  const addrs = [...stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\/\d+.*?scope (\w+)/g)].map((m) => ({ ip: m[1]!, scope: m[2]! }));
  const pick = addrs.find((a) => a.scope === 'global') ?? addrs[0];
  if (!pick) {
    throw new InvalidArgumentError('--cluster-advertise', `"${spec.text}": interface ${spec.value} has no IPv4 address`,
      'give the interface the hosts share an address (ip addr add), or give the address itself');
  }
  return { address: pick.ip, ...port };
}
