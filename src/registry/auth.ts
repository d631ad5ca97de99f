/**
 * The WWW-Authenticate challenge flow (distribution's token spec, RFC 7235): the registry answers 401 with
 * `Bearer realm=...,service=...` or `Basic realm=...`; Bearer asks the realm for a token per scope
 * (`repository:NAME:pull,push`), sending the login as Basic credentials when there is one. Tokens are kept
 * per scope for the session. Credentials go into Authorization headers only: never into a message.
 */
import { RegistryError } from '../errors.js';
import type { RegistryCredentials } from './index.js';
import { isLoopback, MiB, type HttpResponse, type Transport } from './transport.js';

export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** The token response is small; more than this is a broken or hostile server. */
export const TOKEN_CAP = MiB;

/** Parses WWW-Authenticate values; unknown schemes are skipped. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    // scheme token68-or-params [, scheme ...]: split on a scheme name that follows a comma.
    const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+((?:[^",]|"(?:[^"\\]|\\.)*")*(?:,\s*[A-Za-z0-9_-]+\s*=\s*(?:[^",\s]*|"(?:[^"\\]|\\.)*"))*))?\s*(?:,|$)/y;
    let m: RegExpExecArray | null;
    while (re.lastIndex < value.length && (m = re.exec(value)) !== null) {
      if (m[0] === '') break;
      const scheme = m[1]!.toLowerCase();
      const params: Record<string, string> = {};
      const pr = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^",\s]*))/g;
      let p: RegExpExecArray | null;
      while ((p = pr.exec(m[2] ?? '')) !== null) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
      if (scheme === 'bearer' || scheme === 'basic') out.push({ scheme, params });
    }
  }
  return out;
}

export function basicHeader(creds: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

export class Authorizer {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, string>();
  /** true once a bearer token was granted on the strength of a login (a later 401 means "no permission") */
  grantedWithLogin = false;
  /** what to tell a user whose login was refused (a login check says it differently) */
  wrongLoginHint: string;

  constructor(private readonly transport: Transport, private readonly creds: RegistryCredentials | undefined) {
    this.wrongLoginHint = `log in again with "berth login ${transport.registry}"`;
  }

  get hasCredentials(): boolean {
    return this.creds !== undefined;
  }

  get scheme(): Challenge['scheme'] | undefined {
    return this.challenge?.scheme;
  }

  /** Takes the challenge of a 401 (or of the first GET /v2/). */
  learn(res: HttpResponse): void {
    if (res.status !== 401) return;
    const found = parseChallenges(res.headers['www-authenticate']);
    // Prefer Bearer: Basic would send the password with every request.
    const chosen = found.find((c) => c.scheme === 'bearer') ?? found[0];
    if (chosen) this.challenge = chosen;
  }

  /**
   * The Authorization header for `scopes` (undefined: anonymous). `fresh`: ask for a new token even
   * when one is cached (after a 401 with it).
   */
  async header(scopes: readonly string[], reference: string, fresh = false): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.creds ? basicHeader(this.creds) : undefined;
    const key = scopes.join(' ');
    if (!fresh) {
      const cached = this.tokens.get(key);
      if (cached !== undefined) return `Bearer ${cached}`;
    }
    const token = await this.fetchToken(c, scopes, reference);
    this.tokens.set(key, token);
    return `Bearer ${token}`;
  }

  private async fetchToken(c: Challenge, scopes: readonly string[], reference: string): Promise<string> {
    const registry = this.transport.registry;
    const bad = (message: string, hint = 'the registry\'s token service answered something a token service may not; check the registry') =>
      new RegistryError('protocol', registry, reference, message, hint);
    let realm: URL;
    try {
      realm = new URL(c.params.realm ?? '');
    } catch {
      throw bad('the registry asked for a token but named no valid realm');
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw bad(`the token realm is a ${realm.protocol} URL`);
    // A login is sent to the realm: never in clear text to a host that is not this machine, unless the
    // registry itself is spoken to in clear text (an insecure registry, --tls-verify=false).
    if (realm.protocol === 'http:' && this.creds && !isLoopback(realm.hostname) && !this.transport.plainAllowed) {
      throw bad(`the token realm ${realm.host} is plain HTTP: refusing to send the login there`, 'use a registry whose token service speaks HTTPS');
    }
    if (c.params.service) realm.searchParams.set('service', c.params.service);
    for (const s of scopes) if (s) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    let method: 'GET' | 'POST' = 'GET';
    let body: Buffer | undefined;
    if (this.creds?.identityToken) {
      // An OAuth2 refresh token (docker login to some registries stores one instead of a password).
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.identityToken, client_id: 'berth', service: c.params.service ?? '' });
      if (scopes.some(Boolean)) form.set('scope', scopes.filter(Boolean).join(' '));
      body = Buffer.from(form.toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (this.creds) {
      headers.authorization = basicHeader(this.creds);
    }
    const res = await this.transport.request({ method, url: realm.href, headers, ...(body && { body }), reference });
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      if (this.creds) {
        throw new RegistryError('unauthorized', registry, reference, 'unauthorized: incorrect username or password',
          this.wrongLoginHint, { status: res.status });
      }
      throw new RegistryError('unauthorized', registry, reference, 'unauthorized: the registry requires a login',
        `log in with "berth login ${registry}"`, { status: res.status });
    }
    if (res.status >= 500 || res.status === 429) {
      res.body.resume();
      throw new RegistryError('unavailable', registry, reference, `the token service answered ${res.status}`, 'try again later', { status: res.status });
    }
    if (res.status !== 200) {
      res.body.resume();
      throw bad(`the token service answered ${res.status}`);
    }
    const text = await this.transport.readBody(res, TOKEN_CAP, reference, 'the token response');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch {
      throw bad('the token response is not JSON');
    }
    const obj = parsed as { token?: unknown; access_token?: unknown };
    const token = typeof obj.token === 'string' && obj.token ? obj.token : obj.access_token;
    if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token)) throw bad('the token response holds no token');
    if (this.creds) this.grantedWithLogin = true;
    return token;
  }
}
