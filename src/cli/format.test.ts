import { describe, expect, it } from 'vitest';
import { alignTabs, bytesSize, ellipsis, formatPorts, goTime, humanDuration, humanSize, percent, renderRows, table, timeAgo, truncId } from './format.js';

describe('humanSize (docker images SIZE)', () => {
  it.each([
    [0, '0B'], [999, '999B'], [1000, '1kB'], [1234, '1.23kB'], [4_260_000, '4.26MB'], [4_264_999, '4.26MB'],
    [987_654, '988kB'], [1_500_000_000, '1.5GB'], [2e12, '2TB'],
  ])('%d → %s', (n, text) => expect(humanSize(n)).toBe(text));
});

describe('bytesSize (docker stats memory)', () => {
  it.each([[0, '0B'], [1536, '1.5KiB'], [1_572_864, '1.5MiB'], [2_087_354_368, '1.944GiB']])('%d → %s', (n, text) => expect(bytesSize(n)).toBe(text));
});

describe('humanDuration (go-units)', () => {
  const s = 1000;
  const h = 3600 * s;
  it.each([
    [500, 'Less than a second'], [s, '1 second'], [59 * s, '59 seconds'], [60 * s, 'About a minute'], [119 * s, 'About a minute'],
    [120 * s, '2 minutes'], [59 * 60 * s, '59 minutes'], [60 * 60 * s, 'About an hour'], [89 * 60 * s, 'About an hour'],
    [90 * 60 * s, '2 hours'], [47 * h, '47 hours'], [48 * h, '2 days'], [14 * 24 * h, '2 weeks'], [60 * 24 * h, '2 months'],
    [2 * 365 * 24 * h, '2 years'],
  ])('%d ms → %s', (ms, text) => expect(humanDuration(ms)).toBe(text));

  it('says "ago" for creation times', () => {
    expect(timeAgo('2024-01-01T00:00:00Z', Date.parse('2024-01-01T00:02:30Z'))).toBe('2 minutes ago');
    expect(timeAgo('2024-01-01T00:00:00Z', Date.parse('2024-01-01T00:01:30Z'))).toBe('About a minute ago');
  });
});

describe('small formatters', () => {
  it('prints Go times, IDs, ports, percentages', () => {
    expect(goTime('2024-05-01T10:20:30.123456789Z')).toBe('2024-05-01 10:20:30 +0000 UTC');
    expect(truncId('sha256:0123456789abcdef0123')).toBe('0123456789ab');
    expect(truncId('0123456789abcdef')).toBe('0123456789ab');
    expect(formatPorts([
      { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostIp: '::', hostPort: 53, containerPort: 53, protocol: 'udp' },
    ])).toBe('0.0.0.0:8080->80/tcp, [::]:53->53/udp');
    expect(percent(12.3456)).toBe('12.35%');
    expect(percent(NaN)).toBe('0.00%');
  });

  it('cuts text with an ellipsis as docker does', () => {
    expect(ellipsis('echo hi', 20)).toBe('echo hi');
    expect(ellipsis('sleep 1000000000000000000', 20)).toBe('sleep 1000000000000…');
    expect([...ellipsis('sleep 1000000000000000000', 20)]).toHaveLength(20);
  });
});

describe('tables', () => {
  it('pads cells like tabwriter (min 10, padding 3) and leaves the last one alone', () => {
    expect(alignTabs(['A\tBB\tC', 'longer-value\tx\tlast  '])).toEqual([
      'A              BB        C',
      'longer-value   x         last',
    ]);
  });

  it('table() aligns a header and rows', () => {
    expect(table(['PID', 'CMD'], [['1', 'sleep']])).toEqual(['PID       CMD', '1         sleep']);
  });

  it("renders 'table TEMPLATE' with headers, bare templates without, and json", () => {
    const rows = [{ ID: 'abc', Name: 'one' }, { ID: 'def', Name: 'two' }];
    const headers = { ID: 'THE ID', Name: 'NAME' };
    expect(renderRows(rows, undefined, 'table {{.ID}}\t{{.Name}}', headers)).toEqual(['THE ID    NAME', 'abc       one', 'def       two']);
    expect(renderRows(rows, 'table {{.Name}}', 'unused', headers)).toEqual(['NAME', 'one', 'two']);
    expect(renderRows(rows, '{{.Name}}:{{.ID}}', 'unused', headers)).toEqual(['one:abc', 'two:def']);
    expect(renderRows(rows, 'table {{.Name}}\\t{{.ID}}', 'unused', headers)).toEqual(['NAME      THE ID', 'one       abc', 'two       def']);
    expect(renderRows(rows, 'json', 'unused', headers)).toEqual(['{"ID":"abc","Name":"one"}', '{"ID":"def","Name":"two"}']);
  });
});
