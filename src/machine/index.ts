/**
 * Machines (issue 19): remote hosts provisioned over ssh with this Berth, each driven through a context
 * of its own name. `Machines` is the whole surface; records, ssh and the copied tree are private to it.
 */
export { Machines, DRIVERS, DEFAULT_PREFIX, DEFAULT_SSH_PORT, DEFAULT_SSH_USER, type CreateRequest, type MachineState, type MachineStatus, type Progress } from './machines.js';
export type { MachineRecord } from './store.js';
