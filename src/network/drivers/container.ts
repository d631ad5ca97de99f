import { modeDriver } from './simple.js';

/** --network container:X: joins X's netns; X owns it, so teardown leaves it alone. */
export const containerDriver = modeDriver('container', 'container');
