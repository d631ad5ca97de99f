/**
 * The container layer: records, names, and the lifecycle (create → start → exit/cleanup → stop → remove)
 * composed from the image, storage, bundle, runtime and network layers through the ports in ports.ts.
 */
export { ContainerManager, type ContainerDetails, type ContainerSize } from './manager.js';
export type { ContainerDeps, ImagePort, BundlePort, RuntimePort, NetworkPort, SandboxStatus } from './ports.js';
export type { UsernsPort } from './userns.js';
export { ZERO_TIME, type ContainerConfig, type ContainerRecord } from './record.js';
export { dockerStatus, type ContainerState } from './state.js';
export { statusText } from './status.js';
export type { ListedView, RecordView } from './health.js';
export type { ListedRecord } from './catalog.js';
export { healthcheckView, type HealthState } from './healthconfig.js';
export { EventLog } from '../events.js';
export { renameTransform } from './copy.js';
export { withCidfile } from './create.js';
export { parseLabelFile } from './config.js';
export { readUserFile } from './spec.js';
