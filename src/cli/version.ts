/** Kept in a leaf module so that `berth --version` reads no file. */
export { VERSION } from '../version.js';
