/**
 * Rootless Berth: a non-root user runs containers inside a user namespace of its own (issue 18). The CLI
 * calls `runInNamespace` before anything else when it is not root; the layers below ask `rootlessFacts()`
 * what they may do (overlay xattrs, cgroups, networks) and `rootlessDirs` where the store goes.
 */
export { isRootless, rootlessFacts, unprivilegedPortStart, type RootlessFacts } from './detect.js';
export { ensurePrivateDir, rootlessDirs, type RootlessDirs } from './dirs.js';
export { assertInNamespace, MissingSubIdsError, runInNamespace, stopPause, subIdRanges } from './namespace.js';
export { nestedUserns, nestedUsernsFacts, nestedAllocatorOptions, passwdEntry } from './nested.js';
