import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { layerRenderer, progressBar } from './progress.js';

function capture() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => { text += c; });
  return { out, text: () => text };
}

describe('progress', () => {
  it("draws docker's bar", () => {
    expect(progressBar(0, 100, 10)).toBe('[>         ]  0B/100B');
    expect(progressBar(50, 100, 10)).toBe('[=====>    ]  50B/100B');
    expect(progressBar(100, 100, 10)).toBe('[==========]  100B/100B');
  });

  it('prints one plain line per change of words when not a terminal', () => {
    const c = capture();
    const r = layerRenderer(c.out, { tty: false, kind: 'pull' });
    r({ type: 'layer', id: 'aaa', status: 'waiting' });
    r({ type: 'layer', id: 'bbb', status: 'exists' });
    for (const n of [0, 10, 20]) r({ type: 'layer', id: 'aaa', status: 'downloading', current: n, total: 20 });
    r({ type: 'layer', id: 'aaa', status: 'downloaded' });
    r({ type: 'layer', id: 'aaa', status: 'complete' });
    expect(c.text()).toBe('aaa: Pulling fs layer\nbbb: Already exists\naaa: Downloading\naaa: Download complete\naaa: Pull complete\n');
  });

  it('says push words, and where a blob was mounted from', () => {
    const c = capture();
    const r = layerRenderer(c.out, { tty: false, kind: 'push' });
    r({ type: 'layer', id: 'a', status: 'waiting' });
    r({ type: 'layer', id: 'a', status: 'exists' });
    r({ type: 'layer', id: 'b', status: 'mounted', from: 'library/busybox' });
    r({ type: 'layer', id: 'c', status: 'pushed' });
    expect(c.text()).toBe('a: Preparing\na: Layer already exists\nb: Mounted from library/busybox\nc: Pushed\n');
  });

  it('redraws a layer in place on a terminal', () => {
    const c = capture();
    const r = layerRenderer(c.out, { tty: true, kind: 'pull' });
    r({ type: 'layer', id: 'a', status: 'waiting' });
    r({ type: 'layer', id: 'b', status: 'waiting' });
    r({ type: 'layer', id: 'a', status: 'complete' });
    expect(c.text()).toBe('a: Pulling fs layer\nb: Pulling fs layer\n\x1b[2A\x1b[2K\ra: Pull complete\x1b[2B\r');
  });
});
