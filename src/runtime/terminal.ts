/**
 * Following the client's terminal size (docker's resize): each change is applied once the previous one
 * is done, and changes that come meanwhile fold into one, read when it is applied.
 */
import type { ClientTerminal, TerminalSize } from '../types.js';

/**
 * Calls `apply` with the terminal's size after each resize (and at once with `now`) until the returned
 * function is called. A failed resize is dropped, as docker drops it: the process may just have ended.
 */
export function followResizes(terminal: ClientTerminal, apply: (size: TerminalSize) => Promise<void>, now = false): () => void {
  let busy = false;
  let pending = false;
  let stopped = false;
  const kick = (): void => {
    if (stopped) return;
    if (busy) {
      pending = true;
      return;
    }
    busy = true;
    const size = terminal.size();
    // A client that cannot tell its size (0 × 0) leaves the terminal as it is.
    const done = size.rows > 0 && size.columns > 0 ? apply(size).catch(() => {}) : Promise.resolve();
    void done.then(() => {
      busy = false;
      // `stty rows R cols C` is two changes, two SIGWINCHes: one that comes while the first is applied, or
      // that the client folds into the first, must not leave the container at half the change. So the
      // size is read again once a change is applied, and applied again when it moved meanwhile.
      const now = terminal.size();
      if (pending || now.rows !== size.rows || now.columns !== size.columns) {
        pending = false;
        kick();
      }
    });
  };
  const off = terminal.onResize(kick);
  if (now) kick();
  return () => {
    stopped = true;
    off();
  };
}
