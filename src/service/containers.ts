import type { Router } from './router.js';

/** The containers endpoints of the Engine API. */
export function registerContainers(_r: Router): void {}
