import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { NetworkDriver } from '../types.js';
import { bridgeDriver } from './bridge.js';
import { containerDriver } from './container.js';
import { flannelDriver } from './flannel.js';
import { hostDriver } from './host.js';
import { macvlanDriver } from './macvlan.js';
import { noneDriver } from './none.js';
import { overlayDriver } from './overlay.js';

/** The one table of drivers, by kind (netavark's single match, as data). */
const DRIVERS = new Map<string, NetworkDriver<unknown>>([
  ['bridge', bridgeDriver as NetworkDriver<unknown>],
  ['host', hostDriver as NetworkDriver<unknown>],
  ['none', noneDriver as NetworkDriver<unknown>],
  ['container', containerDriver as NetworkDriver<unknown>],
  ['macvlan', macvlanDriver as NetworkDriver<unknown>],
  ['overlay', overlayDriver as NetworkDriver<unknown>],
  ['flannel', flannelDriver as NetworkDriver<unknown>],
]);

/** Adds a third-party driver; see src/network/README.md. Throws AlreadyExistsError for a taken kind. */
export function registerDriver<O>(kind: string, driver: NetworkDriver<O>): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(kind)) throw new InvalidArgumentError('driver', `"${kind}" is not a driver name (a-z 0-9 _ -)`);
  if (DRIVERS.has(kind)) throw new AlreadyExistsError('network', `driver ${kind}`, 'pick another driver name');
  if (driver.kind !== kind) throw new InvalidArgumentError('driver', `driver.kind "${driver.kind}" differs from "${kind}"`);
  DRIVERS.set(kind, driver as NetworkDriver<unknown>);
}

/** Removes a registered driver (tests); built-in drivers stay. */
export function unregisterDriver(kind: string): void {
  if (!['bridge', 'host', 'none', 'container', 'macvlan', 'overlay', 'flannel'].includes(kind)) DRIVERS.delete(kind);
}

export function driverFor(kind: string): NetworkDriver<unknown> {
  const d = DRIVERS.get(kind);
  if (!d) throw new NotFoundError('network', `driver ${kind}`, `known drivers: ${[...DRIVERS.keys()].join(', ')}`);
  return d;
}
