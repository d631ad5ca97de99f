/**
 * The images endpoints of the Engine API (v1.41 shapes): list, inspect, history, tag, remove, prune, load
 * and save here; pull and push in images-transfer.ts, build and commit in images-build.ts. Each is a thin
 * mapping of `call.engine.images`: names, errors and records are the image layer's.
 */
import type { ImageInspect, ImageSummary } from '../types.js';
import { NotFoundError } from '../errors.js';
import { isDefaultImageRef } from '../image/busybox.js';
import { ApiError } from './errors.js';
import { boolParam, filtersParam, sendJson } from './http.js';
import { registerBuild } from './images-build.js';
import { LazyLines } from './images-lines.js';
import { registerTransfer } from './images-transfer.js';
import type { Router } from './router.js';

/** The header that says which archive `GET /images/get` sent (Berth's `format=`; absent from a dockerd). */
export const ARCHIVE_FORMAT_HEADER = 'X-Berth-Archive-Format';

/** RFC 3339 → the unix seconds the Engine API gives `Created` in lists and histories. */
export function unixSeconds(time: string): number {
  const t = Date.parse(time);
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

/**
 * Berth names images in full (`docker.io/library/busybox:latest`, as Podman does); dockerd answers with
 * the familiar form (`busybox:latest`), which clients compare with what the user typed.
 */
export function familiar(name: string): string {
  return name.replace(/^docker\.io\/(library\/(?=[^/]+$))?/, '');
}

/** Berth's inspect with the fields v1.41's ImageInspect has that Berth has no use for, at Docker's empty values. */
export function imageInspectView(img: ImageInspect): Record<string, unknown> {
  return {
    Container: '', ContainerConfig: {}, DockerVersion: '', Parent: '', Comment: '', Author: '',
    ...img,
    RepoTags: img.RepoTags.map(familiar),
    RepoDigests: img.RepoDigests.map(familiar),
    VirtualSize: img.Size,
    // Berth's image store is overlayfs layers under its root; Docker's tools only show the name.
    GraphDriver: { Name: 'overlay', Data: null },
  };
}

/** Berth lists a row per tag (as `berth images` prints); the API gives one entry per image, its tags together. */
export function groupByImage(rows: readonly ImageSummary[]): Map<string, ImageSummary> {
  const byId = new Map<string, ImageSummary>();
  for (const row of rows) {
    const seen = byId.get(row.id);
    if (seen) seen.repoTags.push(...row.repoTags);
    else byId.set(row.id, { ...row, repoTags: [...row.repoTags], repoDigests: [...row.repoDigests] });
  }
  return byId;
}

export function registerImages(r: Router): void {
  r.add('GET', '/images/json', async (call) => {
    const images = call.engine.images;
    const byId = groupByImage(await images.list({ all: boolParam(call.query, 'all'), filters: filtersParam(call.query) }));
    const out = [];
    for (const img of byId.values()) {
      const detail = await images.inspect(img.id).catch(() => undefined); // removed meanwhile: listed without its labels
      const untagged = !img.repoTags.length && !img.repoDigests.length;
      out.push({
        Id: img.id,
        ParentId: (detail?.Parent as string | undefined) ?? '',
        // Docker 20.10's placeholders for an image without names (the CLI prints <none>).
        RepoTags: untagged ? ['<none>:<none>'] : img.repoTags.map(familiar),
        RepoDigests: untagged ? ['<none>@<none>'] : img.repoDigests.map(familiar),
        Created: unixSeconds(img.created),
        Size: img.size,
        VirtualSize: img.size,
        SharedSize: -1,
        Labels: (detail?.Config.Labels as Record<string, string> | undefined) ?? null,
        Containers: -1,
      });
    }
    sendJson(call.res!, 200, out);
  });

  r.add('GET', '/images/{name*}/json', async (call) => {
    const name = call.params.name!;
    const img = await call.engine.images.inspect(name).catch(async (err: unknown) => {
      // Clients (compose) look an image up before they create: the embedded default is made then, as
      // create makes it, rather than sent to a registry this machine cannot reach.
      if (!(err instanceof NotFoundError) || !isDefaultImageRef(name)) throw err;
      await call.engine.images.ensureDefault();
      return call.engine.images.inspect(name);
    });
    sendJson(call.res!, 200, imageInspectView(img));
  });

  r.add('GET', '/images/{name*}/history', async (call) => {
    const name = call.params.name!;
    const [rows, img] = await Promise.all([call.engine.images.history(name), call.engine.images.inspect(name)]);
    sendJson(call.res!, 200, rows.map((h, i) => ({
      Id: h.id,
      Created: unixSeconds(h.created),
      CreatedBy: h.createdBy,
      Tags: i === 0 && img.RepoTags.length ? img.RepoTags.map(familiar) : null,
      Size: h.size,
      Comment: h.comment,
    })));
  });

  r.add('POST', '/images/{name*}/tag', async (call) => {
    const repo = call.query.get('repo');
    if (!repo) throw new ApiError(400, 'repository name (repo) not specified');
    const tag = call.query.get('tag');
    await call.engine.images.tag(call.params.name!, tag ? `${repo}:${tag}` : repo);
    call.res!.writeHead(201).end();
  });

  r.add('DELETE', '/images/{name*}', async (call) => {
    const removed = await call.engine.images.remove(call.params.name!, { force: boolParam(call.query, 'force'), noPrune: boolParam(call.query, 'noprune') });
    sendJson(call.res!, 200, removed.map((x) => (x.untagged !== undefined ? { Untagged: familiar(x.untagged) } : { Deleted: x.deleted })));
  });

  r.add('POST', '/images/prune', async (call) => {
    // Docker's `dangling=false` is Berth's `all`; the other filters (until, label, label!) pass through.
    let all = false;
    const filters: string[] = [];
    for (const f of filtersParam(call.query)) {
      const m = /^dangling=(.*)$/.exec(f);
      if (!m) filters.push(f);
      else if (/^(0|false)$/i.test(m[1]!)) all = true;
      else if (!/^(1|true)$/i.test(m[1]!)) throw new ApiError(400, `invalid filter 'dangling=${m[1]}'`);
    }
    const res = await call.engine.images.prune({ all, filters });
    sendJson(call.res!, 200, { ImagesDeleted: res.deleted.length ? res.deleted.map((d) => ({ Deleted: d })) : null, SpaceReclaimed: res.spaceReclaimed });
  });

  r.add('POST', '/images/load', async (call) => {
    // The body is a tar stream of any size (not bounded as JSON bodies are); the client leaving stops
    // the load, which removes what it had stored.
    const { loaded } = await call.engine.images.load(call.req, { signal: call.signal });
    const out = new LazyLines(call.res!);
    for (const ref of loaded) out.write({ stream: `${ref.startsWith('sha256:') ? 'Loaded image ID' : 'Loaded image'}: ${familiar(ref)}\n` });
    out.end();
  });

  const save = async (call: Parameters<Parameters<Router['add']>[2]>[0], names: string[]) => {
    if (!names.length) throw new ApiError(400, 'no image names given (names=)');
    // Berth's own parameter (Docker's API sends docker-archive only): `format=oci-archive`, which a Berth
    // client asks for and checks in the answer's header, since a dockerd would ignore the parameter.
    const format = call.query.get('format') || 'docker-archive';
    if (format !== 'docker-archive' && format !== 'oci-archive') throw new ApiError(400, `format=${format.slice(0, 100)}: the archive formats are docker-archive and oci-archive`);
    // Every name is checked first: a missing one is a 404, not a tar cut short.
    for (const n of names) await call.engine.images.inspect(n);
    call.res!.setHeader('Content-Type', 'application/x-tar');
    call.res!.setHeader(ARCHIVE_FORMAT_HEADER, format);
    await call.engine.images.save(names, call.res!, { format });
    if (!call.res!.writableEnded) call.res!.end();
  };
  r.add('GET', '/images/get', (call) => save(call, call.query.getAll('names').filter(Boolean)));
  r.add('GET', '/images/{name*}/get', (call) => save(call, [call.params.name!]));

  registerTransfer(r);
  registerBuild(r);
}
