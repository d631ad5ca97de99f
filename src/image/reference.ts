import { InvalidArgumentError } from '../errors.js';
import type { Digest } from '../ids.js';

/**
 * Image references in Docker's grammar (distribution/reference): `[domain/]path[:tag][@sha256:hex]`.
 * Berth has no registry, so names are kept as given (no docker.io/library expansion); a name without a
 * domain is looked up first as `localhost/NAME`, where Berth's own images live, then as NAME.
 */
export interface ImageReference {
  /** repository name as given, e.g. `localhost/busybox`, `busybox`, `example.com:5000/a/b` */
  name: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_TAG = 'latest';
const NAME_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = new RegExp(`^${ALNUM}(?:${SEPARATOR}${ALNUM})*$`);
const DOMAIN = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const ANY_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const ID_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/;

/** Parses `name[:tag][@digest]`; throws InvalidArgumentError naming the reference and what is wrong. */
export function parseReference(text: string): ImageReference {
  const bad = (why: string) => new InvalidArgumentError('reference', `"${text}": ${why}`,
    'use NAME[:TAG][@sha256:DIGEST], lowercase, e.g. localhost/busybox:latest');
  if (text === '') throw bad('empty reference');
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!DIGEST.test(d)) throw bad(ANY_DIGEST.test(d) ? 'only sha256 digests are supported' : 'invalid digest');
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    if (!TAG.test(tag)) throw bad(`invalid tag "${tag}"`);
    rest = rest.slice(0, colon);
  }
  checkName(rest, bad);
  return { name: rest, ...(tag !== undefined && { tag }), ...(digest && { digest }) };
}

function checkName(name: string, bad: (why: string) => Error): void {
  if (name === '') throw bad('missing repository name');
  if (name.length > NAME_MAX) throw bad(`repository name longer than ${NAME_MAX} characters`);
  const parts = name.split('/');
  const domain = hasDomain(name) ? parts.shift()! : undefined;
  if (domain !== undefined && !DOMAIN.test(domain)) throw bad(`invalid registry domain "${domain}"`);
  if (parts.length === 0) throw bad('missing repository name');
  for (const p of parts) {
    if (PATH_COMPONENT.test(p)) continue;
    // Docker's own wording for the most common mistake.
    if (PATH_COMPONENT.test(p.toLowerCase())) throw bad(`repository name (${parts.join('/')}) must be lowercase`);
    throw bad(`invalid repository name component "${p}"`);
  }
}

/** Docker's rule (splitDockerDomain): the first component is a registry if it looks like a host. */
export function hasDomain(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first === 'localhost' || first.includes('.') || first.includes(':') || first !== first.toLowerCase();
}

/** A reference as `name:tag`, with the default tag; the key Berth stores tags under. */
export function taggedName(ref: ImageReference): string {
  return `${ref.name}:${ref.tag ?? DEFAULT_TAG}`;
}

/** Parses a tag target (`berth tag SRC TARGET`, RepoTags): no digest allowed, default tag added. */
export function parseTagTarget(text: string): string {
  const ref = parseReference(text);
  if (ref.digest) throw new InvalidArgumentError('reference', `"${text}": a tag cannot contain a digest`, 'give NAME[:TAG]');
  return taggedName(ref);
}

/**
 * The stored `name:tag` keys a reference may mean, in lookup order: a short name is Berth's own
 * `localhost/` image first (as Podman resolves them), then as given, then as pulled from each
 * unqualified-search registry (Docker Hub's single names live under `library/`).
 */
export function candidateTags(ref: ImageReference, searchRegistries: readonly string[] = ['docker.io']): string[] {
  const tagged = taggedName(ref);
  if (hasDomain(ref.name)) return [tagged];
  const pulled = searchRegistries.map((r) => (r === 'docker.io' && !ref.name.includes('/') ? `${r}/library/${tagged}` : `${r}/${tagged}`));
  return [`localhost/${tagged}`, tagged, ...pulled];
}

/** The hex part when `text` could be an image ID or a prefix of one (`sha256:` optional). */
export function idPrefix(text: string): string | undefined {
  return ID_PREFIX.exec(text)?.[1];
}

/** Splits a stored `name:tag` key. */
export function splitTagged(tagged: string): { name: string; tag: string } {
  const colon = tagged.lastIndexOf(':');
  return { name: tagged.slice(0, colon), tag: tagged.slice(colon + 1) };
}

/**
 * `docker images --filter reference=PATTERN`: a glob (`*` and `?` within one path component) matched
 * against `name` or `name:tag`; for Berth's `localhost/` names also against the short form.
 */
export function matchesReferencePattern(pattern: string, tagged: string): boolean {
  const re = globToRegExp(pattern);
  const { name } = splitTagged(tagged);
  const forms = [tagged, name];
  if (name.startsWith('localhost/')) forms.push(tagged.slice('localhost/'.length), name.slice('localhost/'.length));
  return forms.some((f) => re.test(f));
}

function globToRegExp(pattern: string): RegExp {
  let src = '';
  for (const ch of pattern) {
    if (ch === '*') src += '[^/]*';
    else if (ch === '?') src += '[^/]';
    else src += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}
