/**
 * Berth's programmatic API: `import { Engine } from 'berth'`. The engine is a library, not a daemon:
 * every call opens the store under `root`, takes the locks it needs, and returns. Containers outlive
 * the process that started them (each has its own monitor). This module never prints and never
 * touches process.env or process.exitCode: only cli/ does.
 */
export * from './types.js';
export * from '../errors.js';
export { Engine } from './engine.js';
export type { ClusterAccess, ClusterSettings, ClusterStore, KeyValue, LeaseId, Watch, WatchEvent } from '../cluster/index.js';
export type { RemoteEngineApi, RemoteSystemApi, RemoteVersion } from '../remote/index.js';
export { ContextStore, resolveEngineHost, type ContextInfo } from '../remote/contexts.js';
