import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, listedOf } from './catalog.js';
import type { ContainerRecord } from './record.js';

let dir: string;
let loads: string[];
let catalog: Catalog;
const file = (id: string) => path.join(dir, id, 'container.json');

function record(id: string, name: string): ContainerRecord {
  return {
    id, name, state: 'exited',
    config: {
      image: 'busybox', imageId: 'sha256:1', labels: { a: 'b' }, path: 'true', args: [],
      imageConfig: { ExposedPorts: { '80/tcp': {} }, Env: ['SECRET=1'] },
      spec: { spec: { process: { args: ['true'] } }, mounts: { user: [{ type: 'bind', source: '/s', destination: '/d' }, { type: 'tmpfs', destination: '/t' }], system: [] } },
      request: { image: 'busybox', env: ['SECRET=1'] },
    },
  } as unknown as ContainerRecord;
}

/** Writes a record as the store does (a new file renamed over the old), aged unless `fresh`. */
function write(id: string, name: string, fresh = false): void {
  mkdirSync(path.join(dir, id), { recursive: true });
  writeFileSync(`${file(id)}.tmp`, JSON.stringify(record(id, name)));
  rmSync(file(id), { force: true });
  writeFileSync(file(id), readFileSync(`${file(id)}.tmp`));
  rmSync(`${file(id)}.tmp`);
  if (!fresh) utimesSync(file(id), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
}

const newCatalog = () => new Catalog(dir, file, async (id) => {
  loads.push(id);
  try {
    return JSON.parse(readFileSync(file(id), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
});

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'berth-catalog-unit-'));
  loads = [];
  catalog = newCatalog();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('Catalog', () => {
  it('reads each record once, then only those that changed, also from a new process', async () => {
    write('a', 'one');
    write('b', 'two');
    expect((await catalog.list(['a', 'b'])).map((r) => r.name)).toEqual(['one', 'two']);
    expect(loads.sort()).toEqual(['a', 'b']);
    loads = [];
    await catalog.list(['a', 'b']);
    expect(loads).toEqual([]);
    write('b', 'two again');
    catalog = newCatalog(); // another command: only the file is shared
    expect((await catalog.list(['a', 'b'])).map((r) => r.name)).toEqual(['one', 'two again']);
    expect(loads).toEqual(['b']);
  });

  it('reads a record written within the timestamp granularity every time, until it is older', async () => {
    write('a', 'one', true);
    await catalog.list(['a']);
    await newCatalog().list(['a']);
    expect(loads).toEqual(['a', 'a']);
  });

  it('drops what is gone, and rebuilds from the records when its file is missing or corrupt', async () => {
    write('a', 'one');
    write('b', 'two');
    await catalog.list(['a', 'b']);
    rmSync(path.join(dir, 'b'), { recursive: true });
    expect((await newCatalog().list(['a', 'b'])).map((r) => r.name)).toEqual(['one']);
    for (const bad of ['', '{"version":1', '{"version":1,"entries":{"a":{"stamp":7}}}', '[]']) {
      writeFileSync(path.join(dir, '.catalog.json'), bad);
      loads = [];
      expect((await newCatalog().list(['a'])).map((r) => r.name)).toEqual(['one']);
      expect(loads).toEqual(['a']);
    }
  });

  it('keeps what lists show and filter on, without the runc spec, the image config or the request', () => {
    const listed = listedOf(record('a', 'one'));
    expect(listed.config.spec).toEqual({ mounts: { user: [{ type: 'bind', source: '/s', destination: '/d' }] } });
    expect(listed.config.imageConfig).toEqual({ ExposedPorts: { '80/tcp': {} } });
    expect('request' in listed.config).toBe(false);
    expect(listed.config.labels).toEqual({ a: 'b' });
  });
});
