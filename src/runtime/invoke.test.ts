import { describe, expect, it } from 'vitest';
import { CannotInvokeError, CommandNotFoundError } from '../errors.js';
import { invokeErrorFromText } from './invoke.js';
import { runcMessages } from './monitor.js';

describe('runc start failures', () => {
  it('maps missing commands to 127', () => {
    const e = invokeErrorFromText('exec failed: unable to start container process: exec: "nosuch": executable file not found in $PATH', 'x');
    expect(e).toBeInstanceOf(CommandNotFoundError);
    expect(e?.message).toContain('nosuch');
    expect(invokeErrorFromText('exec: "/nonexist": stat /nonexist: no such file or directory', 'x')).toBeInstanceOf(CommandNotFoundError);
  });

  it('maps non-executables to 126', () => {
    expect(invokeErrorFromText('exec: "/bin": permission denied', 'x')).toBeInstanceOf(CannotInvokeError);
    expect(invokeErrorFromText('exec /bin/badfmt: exec format error', 'x')).toBeInstanceOf(CannotInvokeError);
  });

  it('leaves other failures alone', () => {
    expect(invokeErrorFromText('error mounting "/x" to rootfs: no such file or directory', 'x')).toBeUndefined();
    expect(invokeErrorFromText('setrlimit: operation not permitted', 'x')).toBeUndefined();
  });

  it('reads runc logrus text through conmon', () => {
    const text = 'time="2024-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \\"nosuchcmd\\": executable file not found in $PATH"\n';
    expect(runcMessages(text)).toBe('runc create failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH');
    expect(invokeErrorFromText(runcMessages(text), 'x')).toBeInstanceOf(CommandNotFoundError);
  });
});
