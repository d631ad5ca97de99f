/** Kept beside the CLI so that `berth --version` reads no file; bump with package.json. */
export const VERSION = '0.1.0';
