/**
 * The store's TLS options (etcds://, kv.cacertfile, kv.certfile, kv.keyfile) against an etcd that demands
 * client certificates, and its auth (kv.username, kv.password) against an etcd with auth enabled and
 * tokens that expire after a second, so that re-authentication is exercised.
 */
import { describe, expect, it } from 'vitest';
import { ClusterStoreError, ClusterUnavailableError, InvalidArgumentError } from '../../src/errors.js';
import { etcdForFile } from '../helpers/etcd.js';

describe('TLS with client certificates', () => {
  const cluster = etcdForFile({ tls: true, clientCertAuth: true });

  it('speaks TLS with the CA and a client certificate', async () => {
    const { tls } = cluster.etcd;
    const s = cluster.client({ opts: { 'kv.cacertfile': tls!.ca, 'kv.certfile': tls!.clientCert, 'kv.keyfile': tls!.clientKey } });
    expect(cluster.etcd.uri).toMatch(/^etcds:\/\//);
    await s.put('/tls/k', 'v');
    expect((await s.get('/tls/k'))?.value).toBe('v');
    // Watches open connections of their own: they carry the same TLS files.
    const w = s.watch('/tls/', { fromRevision: 1 });
    const first = await w[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ type: 'put', kv: { key: '/tls/k' } });
    w.close();
  });

  it('fails with ClusterUnavailableError, saying TLS, when etcd\'s certificate is not trusted or no client certificate is given', async () => {
    const untrusted = cluster.client({ timeoutMs: 2000 });
    const err = await untrusted.get('/tls/k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterUnavailableError);
    expect((err as Error).message).toMatch(/TLS/);
    const noClientCert = cluster.client({ timeoutMs: 2000, opts: { 'kv.cacertfile': cluster.etcd.tls!.ca } });
    await expect(noClientCert.get('/tls/k')).rejects.toBeInstanceOf(ClusterUnavailableError);
  });

  it('plain etcd:// to a TLS port fails with a typed error, not a hang', async () => {
    const plain = cluster.client({ uri: cluster.etcd.uri.replace('etcds://', 'etcd://'), timeoutMs: 2000 });
    const err = await plain.get('/tls/k').catch((e: unknown) => e);
    expect(err instanceof ClusterUnavailableError || err instanceof ClusterStoreError).toBe(true);
  });

  it('an unreadable TLS file is an InvalidArgumentError naming the option', () => {
    expect(() => cluster.client({ opts: { 'kv.cacertfile': '/nonexistent/ca.pem' } })).toThrow(InvalidArgumentError);
    expect(() => cluster.client({ opts: { 'kv.cacertfile': '/nonexistent/ca.pem' } })).toThrow(/kv\.cacertfile.*\/nonexistent\/ca\.pem/);
  });
});

describe('auth with a user and password', () => {
  const cluster = etcdForFile({ extraArgs: ['--auth-token-ttl', '1'] });
  const enableAuth = () => {
    cluster.etcd.ctl(['user', 'add', 'root:rootpw', '--interactive=false']);
    cluster.etcd.ctl(['user', 'add', 'berth:berthpw', '--interactive=false']);
    cluster.etcd.ctl(['role', 'add', 'berth']);
    cluster.etcd.ctl(['role', 'grant-permission', 'berth', '--prefix=true', 'readwrite', '/berth/']);
    cluster.etcd.ctl(['user', 'grant-role', 'berth', 'berth']);
    cluster.etcd.ctl(['auth', 'enable']);
  };

  it('authenticates, re-authenticates when the token expires, and maps refusals to typed errors', async () => {
    enableAuth();
    const s = cluster.client({ opts: { 'kv.username': 'berth', 'kv.password': 'berthpw' } });
    await s.put('/berth/auth/k', 'v');
    expect((await s.get('/berth/auth/k'))?.value).toBe('v');
    const lease = await s.grantLease(30);
    // The simple token lives 1 s here (--auth-token-ttl 1): the next call gets "invalid auth token" and
    // must authenticate again by itself.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await s.keepAliveOnce(lease)).toBeGreaterThan(0);
    expect((await s.get('/berth/auth/k'))?.value).toBe('v');
    // A watch opened with an expired token is canceled by etcd; it authenticates again and goes on.
    await new Promise((r) => setTimeout(r, 2500));
    const w = s.watch('/berth/auth/', { fromRevision: 1 });
    expect((await w[Symbol.asyncIterator]().next()).value).toMatchObject({ type: 'put', kv: { key: '/berth/auth/k' } });
    w.close();
    await s.put('/berth/auth/leased', 'x', { lease });
    await s.revokeLease(lease);

    // Outside the role's prefix: permission denied.
    const denied = await s.put('/elsewhere', 'v').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ClusterStoreError);
    expect((denied as ClusterStoreError).reason).toBe('permission');

    const wrong = cluster.client({ opts: { 'kv.username': 'berth', 'kv.password': 'nope' } });
    const err = await wrong.get('/berth/auth/k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterStoreError);
    expect((err as ClusterStoreError).reason).toBe('unauthenticated');
    expect((err as ClusterStoreError).hint).toMatch(/kv\.username and kv\.password/);

    const anonymous = cluster.client();
    const anon = await anonymous.get('/berth/auth/k').catch((e: unknown) => e);
    expect(anon).toBeInstanceOf(ClusterStoreError);
    expect((anon as ClusterStoreError).hint).toMatch(/kv\.username/);
  });
});
