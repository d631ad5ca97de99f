import { createHash } from 'node:crypto';
import type { Digest } from '../ids.js';

/** The OCI image config (image-spec config.md); Docker's is the same shape. */
export interface OciImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: OciContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: OciHistory[];
  [key: string]: unknown;
}

export interface OciContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [key: string]: unknown;
}

export interface OciHistory {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export const MediaType = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
} as const;

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.index, MediaType.dockerList]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.manifest, MediaType.dockerManifest]);

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** containerd and `docker save` (25+) put the full name here; ref.name may hold only a tag. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** The layer media type for a blob, from its first bytes (gzip 1f8b, zstd 28b52ffd). */
export function layerMediaType(head: Uint8Array): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.layerGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return MediaType.layerZstd;
  return MediaType.layer;
}

/** Go's GOARCH words, which OCI uses, for Node's process.arch. */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[arch] ?? arch;
}

/** Serialised once so that the same inputs always give the same digest. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value);
}
