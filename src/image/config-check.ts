import { isDigest } from '../ids.js';

/**
 * Type checks for an image config (image-spec config.md, and the fields Docker adds that Berth reads),
 * done when an image enters the store: a config that says `"Cmd": "echo x"` would otherwise load and
 * then run `e`. Returns what is wrong, one line per field, empty when the config is sound. Fields Berth
 * does not know are left alone, as the spec lets writers add them; an optional field may be null
 * (Docker writes `"Volumes": null`), which means absent.
 */
export function checkImageConfig(value: unknown): string[] {
  const problems: string[] = [];
  const at = new Checker(problems);
  if (!isObject(value)) return [`the config is ${describe(value)}, not an object`];
  at.string(value, 'architecture', true);
  at.string(value, 'os', true);
  at.string(value, 'variant');
  at.string(value, 'author');
  at.string(value, 'os.version');
  at.strings(value, 'os.features');
  at.time(value, 'created');
  const rootfs = value.rootfs;
  if (!isObject(rootfs)) problems.push(`rootfs must be an object with type "layers" and diff_ids, not ${describe(rootfs)}`);
  else {
    if (rootfs.type !== 'layers') problems.push(`rootfs.type must be "layers", not ${describe(rootfs.type)}`);
    if (!Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every((d) => typeof d === 'string' && isDigest(d))) {
      problems.push(`rootfs.diff_ids must be a list of sha256 digests, not ${describe(rootfs.diff_ids)}`);
    }
  }
  if (value.config != null) {
    if (!isObject(value.config)) problems.push(`config must be an object, not ${describe(value.config)}`);
    else checkContainerConfig(value.config, new Checker(problems, 'config.'));
  }
  if (value.history != null) {
    if (!Array.isArray(value.history)) problems.push(`history must be a list, not ${describe(value.history)}`);
    else value.history.forEach((h, i) => {
      if (!isObject(h)) return problems.push(`history[${i}] must be an object, not ${describe(h)}`);
      const c = new Checker(problems, `history[${i}].`);
      c.time(h, 'created');
      for (const k of ['author', 'created_by', 'comment']) c.string(h, k);
      c.boolean(h, 'empty_layer');
    });
  }
  return problems;
}

function checkContainerConfig(cfg: Record<string, unknown>, at: Checker): void {
  for (const k of ['User', 'WorkingDir', 'StopSignal', 'Hostname', 'Domainname', 'Image']) at.string(cfg, k);
  at.strings(cfg, 'Env');
  at.strings(cfg, 'Entrypoint');
  at.strings(cfg, 'Cmd');
  at.strings(cfg, 'Shell');
  at.emptyObjects(cfg, 'ExposedPorts');
  at.emptyObjects(cfg, 'Volumes');
  at.stringMap(cfg, 'Labels');
  at.boolean(cfg, 'ArgsEscaped');
  for (const k of ['Memory', 'MemorySwap', 'CpuShares']) at.integer(cfg, k);
  const hc = cfg.Healthcheck;
  if (hc != null) {
    if (!isObject(hc)) at.problems.push(`${at.prefix}Healthcheck must be an object, not ${describe(hc)}`);
    else {
      const h = new Checker(at.problems, `${at.prefix}Healthcheck.`);
      h.strings(hc, 'Test');
      for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries']) h.integer(hc, k);
    }
  }
}

class Checker {
  constructor(readonly problems: string[], readonly prefix = '') {}

  private check(obj: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, what: string, required = false): void {
    const v = obj[key];
    if (v === undefined || (v === null && !required)) {
      if (required) this.problems.push(`${this.prefix}${key} is missing; it must be ${what}`);
      return;
    }
    if (!ok(v)) this.problems.push(`${this.prefix}${key} must be ${what}, not ${describe(v)}`);
  }

  string(obj: Record<string, unknown>, key: string, required = false): void {
    this.check(obj, key, (v) => typeof v === 'string', 'a string', required);
  }

  boolean(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => typeof v === 'boolean', 'true or false');
  }

  integer(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => Number.isSafeInteger(v), 'an integer');
  }

  strings(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'a list of strings');
  }

  stringMap(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => isObject(v) && Object.values(v).every((x) => typeof x === 'string'), 'an object of strings');
  }

  /** `{"80/tcp": {}}`: the spec's set, whose values are empty objects. */
  emptyObjects(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => isObject(v) && Object.values(v).every(isObject), 'an object whose values are {}');
  }

  /** RFC 3339, as the spec asks: anything Date.parse cannot read is refused. */
  time(obj: Record<string, unknown>, key: string): void {
    this.check(obj, key, (v) => typeof v === 'string' && !Number.isNaN(Date.parse(v)), 'an RFC 3339 date-time string');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The offending value, short: a hostile config may hold megabytes there. */
function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  const kind = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
  const text = JSON.stringify(v) ?? String(v);
  return `${kind} (${text.length > 60 ? `${text.slice(0, 57)}...` : text})`;
}
