/** `berth login` and `berth logout`, with Docker's flags, messages and exit codes. */
import { InvalidArgumentError } from '../../errors.js';
import { type Command, type Context, defineCommand } from '../command.js';
import { UsageError } from '../parser.js';
import { readLine } from '../report.js';

const AUTHFILE_OPTION = { name: 'authfile', type: 'string', help: 'Path of the authentication file (default ~/.config/berth/auth.json, or $BERTH_AUTH_FILE)' } as const;

/** Reads a password from the terminal without echoing it; Ctrl-C or Ctrl-D gives up. */
function readSecret(ctx: Context): Promise<string> {
  const stdin = ctx.stdin;
  stdin.setRawMode?.(true);
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      ctx.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new InvalidArgumentError('password', 'no password given', 'type the password, or use --password-stdin'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

async function readAll(ctx: Context): Promise<string> {
  let text = '';
  for await (const chunk of ctx.stdin) text += chunk.toString();
  return text;
}

const login = defineCommand({
  name: 'login',
  usage: '[OPTIONS] [SERVER]', summary: 'Log in to a registry (default docker.io)',
  options: [
    { name: 'username', short: 'u', type: 'string', help: 'Username' },
    { name: 'password', short: 'p', type: 'string', help: 'Password' },
    { name: 'password-stdin', type: 'bool', help: 'Take the password from stdin' },
    AUTHFILE_OPTION,
    { name: 'tls-verify', type: 'bool', default: true, help: 'Require HTTPS and verify certificates when contacting the registry' },
  ],
  maxArgs: 1,
  async action(ctx, o, args) {
    let username = o.username;
    let password = o.password;
    if (password !== undefined && o.passwordStdin) throw new UsageError('--password and --password-stdin are mutually exclusive');
    if (o.passwordStdin) {
      if (!username) throw new UsageError('Must provide --username with --password-stdin');
      // Docker's rule: the whole of stdin, trailing newlines dropped.
      password = (await readAll(ctx)).replace(/[\r\n]+$/, '');
    } else if (password !== undefined) {
      ctx.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (username === undefined || password === undefined) {
      if (!ctx.stdin.isTTY) throw new UsageError('Cannot perform an interactive login from a non TTY device', 1);
      if (username === undefined) {
        ctx.stdout.write('Username: ');
        username = (await readLine(ctx.stdin)).trim();
      }
      if (password === undefined) {
        ctx.stdout.write('Password: ');
        password = await readSecret(ctx);
      }
    }
    const engine = await ctx.engine();
    const res = await engine.registries.login(args[0], { username, password }, { ...(o.authfile && { authFile: o.authfile }), tlsVerify: o.tlsVerify });
    if (res.inFile) ctx.stderr.write(`WARNING! Your password will be stored unencrypted in ${res.storedIn}.\nConfigure a credential helper (credsStore or credHelpers in that file) to remove this warning.\n\n`);
    ctx.print('Login Succeeded');
  },
});

const logout = defineCommand({
  name: 'logout',
  usage: '[OPTIONS] [SERVER]', summary: 'Log out from a registry (default docker.io)',
  options: [AUTHFILE_OPTION],
  maxArgs: 1,
  async action(ctx, o, args) {
    const res = await (await ctx.engine()).registries.logout(args[0], { ...(o.authfile && { authFile: o.authfile }) });
    // Docker: logging out of a registry one is not logged in to is not an error.
    ctx.print(res.removed ? `Removing login credentials for ${res.key}` : `Not logged in to ${res.key}`);
  },
});

export const registryCommands: readonly Command[] = [login, logout];
