/**
 * The client terminals of attach and exec. Docker's client sends its terminal size as separate requests
 * (`POST /containers/{id}/resize`, `POST /exec/{id}/resize`), often before the stream it belongs to has
 * begun (docker run: create, attach, start, resize), so each container and each exec instance has one
 * terminal object for the life of the service, which the resize endpoint sets and the Engine follows
 * (ClientTerminal in src/types.ts).
 */
import { EventEmitter } from 'node:events';
import type { ClientTerminal, TerminalSize } from '../types.js';
import { ApiError } from './errors.js';
import type { ServiceState } from './router.js';

export class ServiceTerminal implements ClientTerminal {
  // 0 × 0: no size known yet; the Engine then leaves the terminal as it is (runtime/terminal.ts).
  private current: TerminalSize = { rows: 0, columns: 0 };
  private readonly events = new EventEmitter();

  size(): TerminalSize {
    return this.current;
  }

  onResize(listener: () => void): () => void {
    this.events.on('resize', listener);
    return () => this.events.off('resize', listener);
  }

  resize(size: TerminalSize): void {
    this.current = size;
    this.events.emit('resize');
  }
}

/** The terminal of container `id` (its full ID), made on first use. Start and attach hand it to the Engine. */
export function containerTerminal(state: ServiceState, id: string): ServiceTerminal {
  const key = `terminal:${id}`;
  let t = state.shared.get(key) as ServiceTerminal | undefined;
  if (!t) {
    t = new ServiceTerminal();
    state.shared.set(key, t);
  }
  return t;
}

/** Forgets a removed container's terminal. */
export function forgetContainerTerminal(state: ServiceState, id: string): void {
  state.shared.delete(`terminal:${id}`);
}

/**
 * `h` and `w` as Docker's resize takes them: both required decimal integers (moby: strconv.Atoi), kept to
 * what a terminal's winsize holds (uint16).
 */
export function sizeParams(q: URLSearchParams): TerminalSize {
  const read = (name: string) => {
    const v = q.get(name) ?? '';
    if (!/^\d{1,5}$/.test(v) || Number(v) > 0xffff) throw new ApiError(400, `invalid value for ${name}: "${v}": a terminal ${name === 'h' ? 'height' : 'width'} is a whole number from 0 to 65535`);
    return Number(v);
  };
  return { rows: read('h'), columns: read('w') };
}
