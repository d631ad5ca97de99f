import type { Router } from './router.js';

/** The networks endpoints of the Engine API. */
export function registerNetworks(_r: Router): void {}
