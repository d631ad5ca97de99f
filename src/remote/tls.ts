/**
 * TLS for tcp:// hosts, as the docker CLI does it: `--tls` encrypts (the client's certificate sent when
 * there is one, the server's not checked), `--tlsverify` (or BERTH_TLS_VERIFY) also checks the server's
 * certificate against the CA. Files come from --tlscacert/--tlscert/--tlskey, else from BERTH_CERT_PATH
 * (DOCKER_CERT_PATH's role: ca.pem, cert.pem, key.pem), else from the config folder. Node's `tls`: no
 * cryptography of Berth's own.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, RemoteError } from '../errors.js';

/** Where the material of a TLS connection is read from (paths), and whether the server is checked. */
export interface TlsFiles {
  verify: boolean;
  ca?: string;
  cert?: string;
  key?: string;
}

/** The material itself, read once at the edge. */
export interface ClientTls {
  verify: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface TlsFlags {
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
}

const HINT = 'give --tlscacert, --tlscert and --tlskey, or put ca.pem, cert.pem and key.pem in $BERTH_CERT_PATH';

/**
 * Docker's choice from the global flags and the environment: undefined when TLS is not asked for. A file
 * named by a flag must exist; one found by default (BERTH_CERT_PATH) is used only when it is there.
 */
export function tlsFilesOf(flags: TlsFlags, env: NodeJS.ProcessEnv, configDir: string): TlsFiles | undefined {
  const verify = !!flags.tlsverify || !!env.BERTH_TLS_VERIFY;
  const named = flags.tlscacert ?? flags.tlscert ?? flags.tlskey;
  if (!flags.tls && !verify && named === undefined) return undefined;
  const dir = env.BERTH_CERT_PATH || configDir;
  const pick = (flag: string | undefined, file: string) => flag ?? (exists(path.join(dir, file)) ? path.join(dir, file) : undefined);
  const files: TlsFiles = { verify, ca: pick(flags.tlscacert, 'ca.pem'), cert: pick(flags.tlscert, 'cert.pem'), key: pick(flags.tlskey, 'key.pem') };
  if (!!files.cert !== !!files.key) throw new InvalidArgumentError(files.cert ? '--tlskey' : '--tlscert', `a client certificate needs its key and the key its certificate (${files.cert ?? files.key} alone)`, HINT);
  return files;
}

function exists(file: string): boolean {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Reads the files; a missing or unreadable one is the user's mistake, named. */
export function loadTls(files: TlsFiles): ClientTls {
  const read = (flag: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new InvalidArgumentError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, HINT, { cause: err });
    }
  };
  return { verify: files.verify, ca: read('--tlscacert', files.ca), cert: read('--tlscert', files.cert), key: read('--tlskey', files.key) };
}

/** The errno-less failures of a TLS handshake or of a peer's alert: OpenSSL's codes and Node's certificate checks. */
export function isTlsFailure(code: string | undefined): boolean {
  return !!code && (/^ERR_SSL_|^ERR_TLS_|CERT|_SIGNATURE$|^EPROTO$/.test(code));
}

/** A TLS failure as the typed error naming the host; `secure`: whether this side spoke TLS. */
export function tlsRefusal(uri: string, err: Error, secure: boolean): RemoteError {
  return new RemoteError('tls', uri, `the TLS connection to ${uri} failed: ${err.message}`, secure
    ? 'check that the CA (--tlscacert) signed the server\'s certificate, and that the server\'s CA signed yours (--tlscert, --tlskey)'
    : 'the server speaks TLS: give --tlsverify with --tlscacert, --tlscert and --tlskey (or BERTH_CERT_PATH)', { cause: err });
}
