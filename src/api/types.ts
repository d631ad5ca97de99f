// The public types live in a leaf module (src/types.ts) so that every layer can name them without
// importing upward; the API re-exports them as its surface.
export * from '../types.js';
