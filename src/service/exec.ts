import type { Router } from './router.js';

/** The exec endpoints of the Engine API. */
export function registerExec(_r: Router): void {}
