import { EventEmitter } from 'node:events';
import type { ClientTerminal, TerminalSize } from '../../src/types.js';

export interface FakeTerminal extends ClientTerminal {
  /** Sets the size and emits as a tty stream's 'resize' does (`silent`: a change whose signal the client folded away). */
  resize(rows: number, columns: number, opts?: { silent?: boolean }): void;
  listeners(): number;
}

/** A client terminal whose size the test sets. */
export function fakeTerminal(rows: number, columns: number): FakeTerminal {
  const ev = new EventEmitter();
  let size: TerminalSize = { rows, columns };
  return {
    size: () => size,
    onResize(listener) {
      ev.on('resize', listener);
      return () => ev.off('resize', listener);
    },
    resize(r, c, opts: { silent?: boolean } = {}) {
      size = { rows: r, columns: c };
      if (!opts.silent) ev.emit('resize');
    },
    listeners: () => ev.listenerCount('resize'),
  };
}
