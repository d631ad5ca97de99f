import { modeDriver } from './simple.js';

/** --network none: a netns of its own with only lo (Berth still makes it, so container:X can join it). */
export const noneDriver = modeDriver('none', 'none');
