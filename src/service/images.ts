import type { Router } from './router.js';

/** The images endpoints of the Engine API. */
export function registerImages(_r: Router): void {}
