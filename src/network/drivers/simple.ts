import { BadStateError } from '../../errors.js';
import type { NetworkDriver, SandboxMode } from '../types.js';
import { refuseUnknown } from './options.js';

/** Drivers that only pick a sandbox mode (host, none, container:X): no endpoints, no options. */
export function modeDriver(kind: string, mode: SandboxMode): NetworkDriver<Record<string, never>> {
  const noEndpoints = async () => {
    throw new BadStateError(`the ${kind} network has no endpoints`, 'use a bridge or macvlan network');
  };
  return {
    kind,
    mode,
    needsSubnet: false,
    supportsDns: false,
    parseOptions(raw) {
      refuseUnknown(raw, [], kind);
      return {};
    },
    async createNetwork() {},
    async deleteNetwork() {},
    join: noEndpoints,
    leave: noEndpoints,
  };
}
