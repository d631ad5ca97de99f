import type { Router } from './router.js';

/** The volumes endpoints of the Engine API. */
export function registerVolumes(_r: Router): void {}
