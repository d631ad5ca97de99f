/**
 * The container layer: records, names, and the lifecycle (create → start → exit/cleanup → stop → remove)
 * composed from the image, storage, bundle, runtime and network layers through the ports in ports.ts.
 */
export { ContainerManager } from './manager.js';
export type { ContainerDeps, ImagePort, BundlePort, RuntimePort, NetworkPort, SandboxStatus } from './ports.js';
export type { ContainerRecord } from './record.js';
export { EventLog } from '../events.js';
