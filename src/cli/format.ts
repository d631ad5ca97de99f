/**
 * Docker's ways of printing things, matched on purpose since people read and scripts parse them:
 * go-units sizes and durations, the tabwriter table layout, ellipsised commands.
 */
import type { PortBinding } from '../api/types.js';
import { parseTemplate } from './template.js';

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** go-units HumanSizeWithPrecision(size, 3), as `docker images` prints SIZE: 4.26MB, 987kB, 0B. */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(precision))}${DECIMAL_UNITS[i]}`;
}

import { humanDuration } from '../util/time.js';

export { humanDuration };

/** "2 minutes ago", as the CREATED column. */
export function timeAgo(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? '' : `${humanDuration(now - t)} ago`;
}

/** Go's time.Time String() in UTC, as docker's CreatedAt: "2024-05-01 10:20:30 +0000 UTC". */
export function goTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  return `${t.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

/** Docker's formatter.Ellipsis: cut to `max` characters, the last one an ellipsis. */
export function ellipsis(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return chars.slice(0, max - 1).join('') + '…';
}

/** Docker truncates IDs to 12 hex characters and drops the "sha256:" of image IDs. */
export function truncId(id: string): string {
  return (id.startsWith('sha256:') ? id.slice(7) : id).slice(0, 12);
}

export function formatPorts(ports: readonly PortBinding[]): string {
  return ports.map((p) => `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/**
 * Go's tabwriter as Docker configures it (minwidth 10, padding 3, blanks): every tab-terminated cell is
 * padded to its column's width; the last cell of a line is not.
 */
export function alignTabs(lines: readonly string[]): string[] {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of rows) {
    cells.slice(0, -1).forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, Math.max(10, [...c].length + 3));
    });
  }
  return rows.map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c + ' '.repeat(widths[i]! - [...c].length) : c)).join('').trimEnd());
}

/**
 * Renders rows for `--format`: 'table' (the default layout), 'table TEMPLATE' (with a header row rendered
 * from `headers`), 'json' (one object per line), or a bare template (no header).
 */
export function renderRows<R extends object>(rows: readonly R[], format: string | undefined, defaultTable: string, headers: R): string[] {
  const fmt = format === undefined || format === '' || format === 'table' ? defaultTable : format;
  if (fmt === 'json') return rows.map((r) => JSON.stringify(r));
  const isTable = fmt.startsWith('table ');
  // Rows are Docker's format contexts (Go structs): a field they lack is an error, not "<no value>".
  const tpl = parseTemplate(unescapeTabs(isTable ? fmt.slice(6) : fmt), { strictFields: true });
  const lines = rows.map((r) => tpl.render(r));
  if (!isTable) return lines;
  return alignTabs([tpl.render(headers), ...lines]);
}

/** Docker accepts a literal `\t` in --format (shells do not expand it). */
function unescapeTabs(s: string): string {
  return s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

/** A plain aligned table (no templates): `top`, `history`, `stats`. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return alignTabs([header.join('\t'), ...rows.map((r) => r.join('\t'))]);
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** go-units BytesSize ("%.4g" in powers of 1024), as `docker stats` prints memory: 1.5MiB. */
export function bytesSize(bytes: number): string {
  let size = bytes;
  let i = 0;
  while (size >= 1024 && i < BINARY_UNITS.length - 1) {
    size /= 1024;
    i++;
  }
  return `${Number(size.toPrecision(4))}${BINARY_UNITS[i]}`;
}

/** Docker's percentages: two decimals and a sign. */
export function percent(value: number): string {
  return `${(Number.isFinite(value) ? value : 0).toFixed(2)}%`;
}
