/**
 * The engine's configuration file: one JSON object, Docker's daemon.json key names where Docker has the same
 * setting, validated against src/config/schema.json (compiled at build time) before anything uses it.
 *
 * Where it comes from, first match wins: `--config FILE` (or `new Engine({ config: FILE })`), `$BERTH_CONFIG`
 * (read by the CLI), then /etc/berth/berth.json if it exists; otherwise every key has its default. For each
 * setting an explicit option (a flag, an Engine option, $BERTH_ROOT) beats the file.
 *
 * Later parts of Berth add their keys here (registries, address pools, the cluster store, user-namespace
 * defaults); until a key works, `NOT_YET` refuses it by name rather than letting it pass and do nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootlessDirs, rootlessFacts } from '../rootless/index.js';
import { InvalidArgumentError } from '../errors.js';
import { describeSchemaErrors } from '../util/schema.js';
import { DEFAULT_AUTO_SIZE, type UsernsMode } from '../userns/index.js';
import { validate as compiled } from './schema.validate.js';
import { parseBip, parsePools } from '../network/index.js';
import { registriesConfig, type RegistryConfigKeys } from '../registry/names.js';
import { parseAdvertise, parseClusterStoreUri, parseStoreOpts, type ClusterStoreOpts } from '../cluster/index.js';

export const DEFAULT_CONFIG_PATH = '/etc/berth/berth.json';

/** /etc/berth/berth.json for root; a rootless user's own $XDG_CONFIG_HOME/berth/berth.json (Podman's choice). */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const facts = rootlessFacts();
  if (!facts.rootless) return DEFAULT_CONFIG_PATH;
  return join(rootlessDirs(env, process.geteuid?.() ?? 0, facts.hostUid).config, 'berth.json');
}

/** The file's contents, as the schema allows them. */
export interface EngineConfig extends RegistryConfigKeys {
  /** persistent store (default /var/lib/berth) */
  'data-root'?: string;
  /** volatile state (default /run/berth, or a folder of its own for a non-default data-root) */
  'exec-root'?: string;
  /** the default bridge network's Linux bridge */
  'bridge'?: string;
  /** MTU of the default bridge network */
  'mtu'?: number;
  /** the default bridge's address and prefix, "10.1.0.1/24" (Docker's bip) */
  'bip'?: string;
  /** automatic subnets of networks, in order (Docker's default-address-pools) */
  'default-address-pools'?: { base: string; size: number }[];
  /** prefix of this store's iptables chains */
  'iptables-chain-prefix'?: string;
  /** OCI runtimes by name, for --runtime NAME ("runc" is built in) */
  'runtimes'?: Record<string, { path: string }>;
  /** the runtime of containers created without --runtime (default "runc") */
  'default-runtime'?: string;
  /** etcd://HOST:PORT[,...] or etcds://...: the store multi-host networks keep their state in */
  'cluster-store'?: string;
  /** this host's underlay address or interface (Docker's cluster-advertise) */
  'cluster-advertise'?: string;
  /** the cluster store's TLS files and credentials (Docker's kv.* names) */
  'cluster-store-opts'?: ClusterStoreOpts;
  /** "default": every container without --userns gets a user namespace of its own (--userns auto) */
  'userns-remap'?: string;
  /** overlay, fuse-overlayfs or auto (the default) */
  'storage-driver'?: string;
}

/**
 * daemon.json keys a Docker user may bring along that Berth does not implement yet. They are refused with
 * this note: accepting them silently would be a setting that does nothing.
 */
const NOT_YET: Readonly<Record<string, string>> = {
  'fixed-cidr': 'containers of the default bridge take addresses from its whole subnet for now (set bip)',
  'log-opts': 'give --log-opt max-size to each container for now',
  'log-driver': 'Berth writes k8s-file logs only',
  'dns': 'give --dns to each container for now',
  'live-restore': 'Berth has no daemon: containers always outlive the command that started them',
};

/**
 * Checks a configuration object; throws InvalidArgumentError naming `source` and every bad key. Returns it
 * typed.
 */
export function parseConfig(value: unknown, source: string): EngineConfig {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const pending = Object.keys(value).filter((k) => k in NOT_YET);
    if (pending.length) {
      throw new InvalidArgumentError('config', `${source}: ${pending.map((k) => `"${k}" is not supported by this version of Berth (${NOT_YET[k]})`).join('; ')}`,
        'remove the key from the file; the README lists the keys Berth reads');
    }
  }
  if (!compiled(value)) {
    throw new InvalidArgumentError('config', `${source} is not a valid Berth configuration: ${describeSchemaErrors(compiled.errors)}`,
      'fix the file; the README lists every key with its type');
  }
  const config = value as EngineConfig;
  try {
    if (config['default-address-pools']) parsePools(config['default-address-pools']);
    if (config.bip) parseBip(config.bip);
    registriesConfig(config);
    // Each key alone: the store may come from a flag and the advertise address from here.
    const store = config['cluster-store'] === undefined ? undefined : parseClusterStoreUri(config['cluster-store'], 'cluster-store');
    if (config['cluster-advertise'] !== undefined) parseAdvertise(config['cluster-advertise'], 'cluster-advertise');
    parseStoreOpts(config['cluster-store-opts'] as Record<string, unknown> | undefined, store);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError('config', `${source}: ${err.message}`, err.hint);
    throw err;
  }
  usernsRemapMode(config, source);
  // dockerd's rules: runc is reserved, and the default must name a runtime that exists.
  if (config.runtimes && 'runc' in config.runtimes) {
    throw new InvalidArgumentError('config', `${source}: runtime name "runc" is reserved`, 'give your runtime another name');
  }
  const dflt = config['default-runtime'];
  if (dflt !== undefined && dflt !== 'runc' && !(config.runtimes && dflt in config.runtimes)) {
    throw new InvalidArgumentError('config', `${source}: default-runtime "${dflt}" is not runc and not a key of runtimes`, 'add it under "runtimes", or remove default-runtime');
  }
  return config;
}

/**
 * Reads and checks the configuration file. `file` undefined: the default path, which may be absent (then
 * the result is empty); a named file must exist.
 */
export function loadConfig(file?: string): EngineConfig {
  const path = file ?? defaultConfigPath();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (file === undefined && code === 'ENOENT') return {};
    throw new InvalidArgumentError('config', `cannot read the configuration file ${path}: ${code ?? (err as Error).message}`,
      code === 'ENOENT' ? 'give the path of an existing file, or leave --config out to use the defaults' : 'check the file\'s permissions');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError('config', `${path} is not valid JSON: ${(err as Error).message}`, 'the file holds one JSON object, e.g. {"data-root": "/srv/berth"}');
  }
  return parseConfig(value, path);
}

/**
 * Docker's userns-remap, in the one form Berth takes: "default" (Docker's dockremap user) gives every
 * container a range of its own from the `berth` subuid/subgid lines, as --userns auto does. Docker's one
 * shared range for a named user would let every container reach every other's files: not offered.
 */
export function usernsRemapMode(config: EngineConfig, source = 'the configuration'): UsernsMode | undefined {
  const value = config['userns-remap'];
  if (value === undefined || value === '') return undefined;
  if (value !== 'default') {
    throw new InvalidArgumentError('config', `${source}: userns-remap "${value}" is not supported: Berth takes only "default" (a range of its own for each container, from the "berth" lines of /etc/subuid and /etc/subgid)`,
      'write "userns-remap": "default", or give --userns auto to the containers that need it');
  }
  return { kind: 'auto', size: DEFAULT_AUTO_SIZE };
}
