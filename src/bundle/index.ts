/**
 * The bundle layer: turns a create request, an image config and host facts into the OCI runtime config
 * runc runs (runtime-spec 1.0.2), and writes it. `buildSpec` and the parsers are pure; host-io.ts holds the
 * few functions that read the disk (the image's passwd/group, device numbers) or write config.json.
 *
 * Life of a bundle: the container layer reads what the spec needs (readUserDb, statDevices, env and seccomp
 * files) → buildSpec → writeBundle (validates against runtime-spec/config.schema.json, atomic write) →
 * the runtime layer hands the directory to runc. `berth update` reuses parseResources.
 */
export { buildSpec, planSpec, finishSpec, MASKED_PATHS, READONLY_PATHS, STOP_SIGNAL_ANNOTATION } from './spec.js';
export { parseResources } from './resources.js';
export { mergeEnv, parseEnvFile } from './env.js';
export { execProcess, type ExecOverrides } from './exec.js';
export { parseSignal, type Signal } from './signals.js';
export { capabilityMask, DEFAULT_CAPABILITIES, ALL_CAPABILITIES } from './capabilities.js';
export { validateSpec } from './validate.js';
export { writeBundle, checkRootfs, readUserDb, statDevices, listHostDevices, readHostCapabilities, devicePathsOf } from './host-io.js';
export { INIT_PATH } from './mounts.js';
export { parseBytes } from './units.js';
export type { BundleInput, BuildResult, DeviceInfo, ImageConfig, NamespaceChoice, PlanInput, PlanResult, SpecPlan, StartInput } from './types.js';
export type { UserDb } from './user.js';
export type * from '../../runtime-spec/types.js';
