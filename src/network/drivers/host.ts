import { modeDriver } from './simple.js';

/** --network host: the container shares the host's netns; Berth makes nothing. */
export const hostDriver = modeDriver('host', 'host');
