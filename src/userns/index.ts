/**
 * User namespaces, with no engine state: the types of id maps, the subuid/subgid parser, --userns modes,
 * and the host-wide allocator of auto ranges. Root Berth (container/) and rootless Berth both build on it.
 */
export { checkIdMaps, formatIdMap, isIdentityMap, keepIdMaps, mappingKey, parseIdMap, parseProcIdMap, toContainerId, toHostId, type IdMap, type IdMapping, type NestedUsernsFacts } from './idmap.js';
export { freeSubidStart, parseSubidFile, rangesOf, SUBGID_FILE, SUBUID_FILE, type SubidRange } from './subid.js';
export { DEFAULT_AUTO_SIZE, formatUsernsMode, parseUsernsMode, type UsernsMode } from './mode.js';
export { DEFAULT_REGISTRY, findFree, openAllocator, SUBID_USER, SUGGESTED_LINE, type AllocatorOptions, type IdAllocator, type RangeEntry, type RangeOwner } from './allocator.js';
