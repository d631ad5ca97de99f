/**
 * Manifests as registries send them: OCI manifest and index, Docker schema 2 manifest and manifest list.
 * Pure parsing and platform choice; nothing here touches the network or the store.
 */
import { InvalidArgumentError, RegistryError } from '../errors.js';
import { isDigest, type Digest } from '../ids.js';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MediaType, ociArchitecture, type Descriptor } from '../image/oci.js';


/** What pull asks for, in the Accept header: every manifest kind it can read. */
export const ACCEPTED_MANIFESTS: readonly string[] = [MediaType.index, MediaType.dockerList, MediaType.manifest, MediaType.dockerManifest];

const SCHEMA1 = new Set(['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']);
const CONFIGS = new Set<string>([MediaType.config, MediaType.dockerConfig]);
const LAYERS = new Set<string>([MediaType.layer, MediaType.layerGzip, MediaType.layerZstd, MediaType.dockerLayer, MediaType.dockerLayerGzip, MediaType.dockerLayerZstd]);

export type { Descriptor };
export type Platform = NonNullable<Descriptor['platform']>;

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[] }
  | { kind: 'manifest'; mediaType: string; config: Descriptor; layers: Descriptor[] };

/** Where a manifest came from, for error messages. */
export interface ManifestSource {
  registry: string;
  reference: string;
}

function protocol(src: ManifestSource, message: string, hint = 'the registry sent something Berth cannot read; check the reference'): RegistryError {
  return new RegistryError('protocol', src.registry, src.reference, message, hint);
}

/**
 * Parses a manifest or index. `contentType` is what the registry said; the document's own `mediaType`
 * wins when present (registries may send a generic type), and the two must not contradict each other.
 */
export function parseManifest(bytes: Buffer, contentType: string, src: ManifestSource): ParsedManifest {
  const header = contentType.split(';')[0]!.trim();
  if (SCHEMA1.has(header)) {
    throw protocol(src, 'is a Docker schema 1 manifest, which Berth does not read', 'push the image again with a current client (schema 2 or OCI)');
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new RegistryError('protocol', src.registry, src.reference, 'the manifest is not valid JSON', 'the registry sent a damaged manifest', { cause: err });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw protocol(src, 'the manifest is not a JSON object');
  if (doc.schemaVersion === 1) throw protocol(src, 'is a Docker schema 1 manifest, which Berth does not read', 'push the image again with a current client (schema 2 or OCI)');
  if (doc.schemaVersion !== 2) throw protocol(src, `the manifest has schemaVersion ${JSON.stringify(doc.schemaVersion)}, not 2`);
  const own = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  let mediaType = own ?? header;
  // An OCI document may omit its mediaType; its shape then says which it is.
  if (!own && !INDEX_MEDIA_TYPES.has(header) && !MANIFEST_MEDIA_TYPES.has(header)) mediaType = Array.isArray(doc.manifests) ? MediaType.index : MediaType.manifest;
  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw protocol(src, `the ${mediaType} has no manifests list`);
    return { kind: 'index', mediaType, manifests: doc.manifests.map((d, i) => descriptor(d, `manifests[${i}]`, src)) };
  }
  if (MANIFEST_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.layers)) throw protocol(src, `the ${mediaType} has no layers list`);
    const config = descriptor(doc.config, 'config', src);
    if (!CONFIGS.has(config.mediaType)) {
      throw protocol(src, `is not a container image: its config has media type ${config.mediaType}`, 'pull an image; artifacts (Helm charts, signatures) cannot be run');
    }
    const layers = doc.layers.map((d, i) => descriptor(d, `layers[${i}]`, src));
    for (const l of layers) {
      if (!LAYERS.has(l.mediaType)) throw protocol(src, `layer ${l.digest} has media type ${l.mediaType}, which Berth cannot unpack`, 'only tar, tar+gzip and tar+zstd layers are supported (no foreign or non-distributable layers)');
    }
    return { kind: 'manifest', mediaType, config, layers };
  }
  throw protocol(src, `the manifest has media type ${mediaType}, which Berth does not read`, `Berth reads ${ACCEPTED_MANIFESTS.join(', ')}`);
}

function descriptor(d: unknown, where: string, src: ManifestSource): Descriptor {
  const x = d as Descriptor;
  if (!x || typeof x !== 'object' || typeof x.mediaType !== 'string' || typeof x.digest !== 'string' || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw protocol(src, `the manifest's ${where} is not a valid descriptor`);
  }
  if (!isDigest(x.digest)) throw protocol(src, `the manifest's ${where} has digest ${JSON.stringify(x.digest).slice(0, 100)}; only sha256 is supported`);
  const out: Descriptor = { mediaType: x.mediaType, digest: x.digest, size: x.size };
  const p = x.platform;
  if (p && typeof p === 'object' && typeof p.os === 'string' && typeof p.architecture === 'string') {
    out.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}) };
  }
  return out;
}

/** This machine's platform; arm64 is `v8` and 32-bit arm its `config.variables.arm_version`, as containerd normalizes. */
export function hostPlatform(arch: string = process.arch, armVersion?: string): Platform {
  const architecture = ociArchitecture(arch);
  if (architecture === 'arm64') return { os: 'linux', architecture, variant: 'v8' };
  if (architecture === 'arm') return { os: 'linux', architecture, variant: `v${armVersion ?? '7'}` };
  return { os: 'linux', architecture };
}

/** `--platform os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new InvalidArgumentError('--platform', `"${text}" is not OS/ARCH[/VARIANT]`, 'e.g. linux/amd64 or linux/arm64/v8');
  }
  const [os, arch, variant] = parts as [string, string, string?];
  const architecture = arch === 'x86_64' || arch === 'x86-64' ? 'amd64' : arch === 'aarch64' ? 'arm64' : arch;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * The index entry for `want`: os and architecture equal; a variant asked for must match (arm64's v8 also
 * matches an entry without one, as containerd normalizes); without one asked, the entry with none or
 * the host's default wins. None matching → a RegistryError listing what the index offers.
 */
export function selectPlatform(index: readonly Descriptor[], want: Platform, src: ManifestSource): Descriptor {
  const images = index.filter((d) => MANIFEST_MEDIA_TYPES.has(d.mediaType));
  const candidates = images.filter((d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture);
  const normalize = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  const wanted = normalize(want);
  const exact = candidates.find((d) => normalize(d.platform!) === wanted);
  const chosen = exact ?? (wanted === undefined ? candidates[0] : undefined);
  if (chosen) return chosen;
  const offered = images.map((d) => (d.platform ? formatPlatform(d.platform) : 'unknown')).filter((p) => p !== 'unknown/unknown');
  throw new RegistryError('not-found', src.registry, src.reference, `no image for platform ${formatPlatform(want)} in the index (it offers ${offered.length ? offered.join(', ') : 'no platforms'})`,
    'pick one of the offered platforms with --platform OS/ARCH[/VARIANT]');
}
