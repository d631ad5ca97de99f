/** Berth's version, a leaf every layer may read (info's ServerVersion); bump with package.json. */
export const VERSION = '0.1.0';
