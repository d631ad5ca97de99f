/** The volumes endpoints (`/volumes/...`): Docker's request and answer shapes over `engine.volumes`. */
import { BadStateError } from '../errors.js';
import { volumeInspectView } from '../api/volumes.js';
import type { VolumeSummary } from '../types.js';
import { ApiError } from './errors.js';
import { boolParam, filtersParam, readJson, sendJson, sendStatus } from './http.js';
import { refuseOthers, stringField, stringMapField } from './networks-body.js';
import type { Router } from './router.js';
import { compareVersions } from './versions.js';

/**
 * A volume as Docker's API gives it. UsageData is what `/system/df` adds (Docker computes it only there):
 * RefCount counts the containers naming the volume; Size is -1, Docker's "not computed", as Berth keeps no
 * volume sizes yet.
 */
export function volumeObject(v: VolumeSummary, opts: { usage?: boolean } = {}): Record<string, unknown> {
  return { ...volumeInspectView(v), ...(opts.usage ? { UsageData: { Size: -1, RefCount: v.UsedBy.length } } : {}) };
}

export function registerVolumes(r: Router): void {
  r.add('GET', '/volumes', async (call) => {
    const vols = await call.engine.volumes.list({ filters: filtersParam(call.query) });
    sendJson(call.res!, 200, { Volumes: vols.map((v) => volumeObject(v)), Warnings: [] });
  });

  r.add('POST', '/volumes/create', async (call) => {
    const body = await readJson(call, { optional: true });
    // ClusterVolumeSpec (API 1.42) is swarm's; refused when set, as any other field Berth lacks.
    refuseOthers(body, ['Name', 'Driver', 'DriverOpts', 'Labels']);
    const vol = await call.engine.volumes.create({
      name: stringField(body, 'Name') || undefined,
      driver: stringField(body, 'Driver') || undefined,
      options: stringMapField(body, 'DriverOpts'),
      labels: stringMapField(body, 'Labels'),
    });
    sendJson(call.res!, 201, volumeObject(vol));
  });

  r.add('GET', '/volumes/{name}', async (call) => {
    sendJson(call.res!, 200, volumeObject(await call.engine.volumes.inspect(call.params.name!)));
  });

  r.add('DELETE', '/volumes/{name}', async (call) => {
    const name = call.params.name!;
    try {
      await call.engine.volumes.remove(name, { force: boolParam(call.query, 'force') });
    } catch (err) {
      if (!(err instanceof BadStateError)) throw err;
      // Docker's words (clients show them as they are), with the ids of the containers using it.
      const users = await call.engine.volumes.inspect(name).then((v) => v.UsedBy, () => []);
      throw new ApiError(409, `remove ${name}: volume is in use - [${users.join(', ')}]`);
    }
    sendStatus(call.res!, 204);
  });

  r.add('POST', '/volumes/prune', async (call) => {
    const filters = filtersParam(call.query);
    // Before API 1.42 a prune takes every unused volume; from 1.42 only anonymous ones unless all=true.
    let all = compareVersions(call.version, '1.42') < 0;
    for (const f of filters.filter((x) => x.startsWith('all='))) {
      const v = f.slice(4);
      if (!/^(true|false|1|0)$/i.test(v)) throw new ApiError(400, `invalid filter 'all=${v}'`);
      all = /^(true|1)$/i.test(v);
    }
    const { deleted } = await call.engine.volumes.prune({ all, filters: filters.filter((x) => !x.startsWith('all=')) });
    // Berth keeps no volume sizes (see volumeObject), so nothing is claimed reclaimed.
    sendJson(call.res!, 200, { VolumesDeleted: deleted, SpaceReclaimed: 0 });
  });
}
