/**
 * Docker's pull/push progress: one line per layer, redrawn in place with a bar on a terminal; plain
 * lines, one per change of a layer's status and no bar, anywhere else (a log, a pipe).
 */
import type { Writable } from 'node:stream';
import type { TransferEvent } from '../api/types.js';
import { humanSize } from './format.js';

type LayerEvent = Extract<TransferEvent, { type: 'layer' }>;

const PULL_WORDS: Record<LayerEvent['status'], string> = {
  waiting: 'Pulling fs layer',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  downloaded: 'Download complete',
  extracting: 'Extracting',
  complete: 'Pull complete',
  retrying: 'Retrying',
  mounted: 'Mounted',
  uploading: 'Pushing',
  pushed: 'Pushed',
};

const PUSH_WORDS: Partial<Record<LayerEvent['status'], string>> = {
  waiting: 'Preparing',
  exists: 'Layer already exists',
  uploading: 'Pushing',
  pushed: 'Pushed',
  retrying: 'Retrying',
};

/** `[=====>      ]  1.2MB/3.4MB`, Docker's bar (50 wide). */
export function progressBar(current: number, total: number, width = 50): string {
  const frac = total > 0 ? Math.min(current / total, 1) : 0;
  const filled = Math.floor(frac * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
  return `[${bar}]  ${humanSize(current)}/${humanSize(total)}`;
}

/** Words for one layer event; `mounted` names its source as Docker does. */
export function layerWords(e: LayerEvent, kind: 'pull' | 'push'): string {
  if (e.status === 'mounted') return `Mounted from ${e.from ?? 'another repository'}`;
  return (kind === 'push' ? PUSH_WORDS[e.status] : undefined) ?? PULL_WORDS[e.status];
}

export interface ProgressRenderer {
  (event: TransferEvent): void;
}

/**
 * Renders layer events of one transfer to `out`. `tty`: each layer keeps its line and is redrawn with
 * ANSI cursor moves; else a line is printed only when a layer's words change.
 */
export function layerRenderer(out: Writable, opts: { tty: boolean; kind: 'pull' | 'push' }): ProgressRenderer {
  const order: string[] = [];
  const shown = new Map<string, string>();
  return (event) => {
    if (event.type !== 'layer') return;
    const words = layerWords(event, opts.kind);
    if (!opts.tty) {
      if (shown.get(event.id) === words) return;
      shown.set(event.id, words);
      out.write(`${event.id}: ${words}\n`);
      return;
    }
    const bar = (event.status === 'downloading' || event.status === 'uploading') && event.total ? ` ${progressBar(event.current ?? 0, event.total)}` : '';
    const line = `${event.id}: ${words}${bar}`;
    const row = order.indexOf(event.id);
    if (row < 0) {
      order.push(event.id);
      shown.set(event.id, line);
      out.write(`${line}\n`);
      return;
    }
    if (shown.get(event.id) === line) return;
    shown.set(event.id, line);
    const up = order.length - row;
    // Up to the layer's line, clear it, write, and back down below the last line.
    out.write(`\x1b[${up}A\x1b[2K\r${line}\x1b[${up}B\r`);
  };
}
