/**
 * A tty container's terminal through the Engine API: the size of the client terminal in the io (docker's
 * ConsoleSize) before the process runs, then each resize while attached.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { fakeTerminal } from '../helpers/terminal.js';

let t: TestEngine;
beforeAll(async () => {
  t = await testEngine(3500);
  await t.engine.images.ensureDefault();
});
afterAll(async () => t?.cleanup());

async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The first `stty size` runs before any resize could reach the container: it shows the size it started with.
const SIZE_THEN_FOLLOW = ['sh', '-c', 'stty size; trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done'];

describe('terminal size', () => {
  it('run: a tty container starts at the client terminal size and follows its resizes', async () => {
    const term = fakeTerminal(33, 101);
    const out = sink();
    let id = '';
    const running = t.engine.run({ image: 'busybox', command: SIZE_THEN_FOLLOW, tty: true, autoRemove: true, network: { networks: ['none'] } },
      { io: { stdout: out.stream, terminal: term }, onCreated: (created) => { id = created; } });
    await until(() => out.text().includes('ready'));
    expect(out.text().split('\r\n')[0]).toBe('33 101');
    term.resize(40, 120);
    await until(() => out.text().includes('40 120\r\n'));
    await t.engine.containers.kill(id, 'SIGKILL');
    expect((await running).exitCode).toBe(137);
    expect(term.listeners()).toBe(0);
  });

  it('start with a terminal, and attach: the size comes first, then each resize', async () => {
    const { id } = await t.engine.containers.create({ image: 'busybox', command: SIZE_THEN_FOLLOW, tty: true, network: { networks: ['none'] } });
    try {
      await t.engine.containers.start(id, { terminal: fakeTerminal(33, 101) });
      await until(async () => (await logText(id)).includes('ready'));
      expect((await logText(id)).split('\r\n')[0]).toBe('33 101');
      // attach sends its own size at once, as docker attach does: the terminal was another client's.
      const term = fakeTerminal(25, 70);
      const out = sink();
      const attached = t.engine.containers.attach(id, { stdout: out.stream, terminal: term });
      await until(() => out.text().includes('25 70\r\n'));
      term.resize(40, 120);
      await until(() => out.text().includes('40 120\r\n'));
      await t.engine.containers.kill(id, 'SIGKILL');
      expect((await attached).exitCode).toBe(137);
    } finally {
      await t.engine.containers.remove(id, { force: true });
    }
  });
});

describe('exec with a tty for a client that is not our terminal (an API client)', () => {
  it('gets a terminal of its own at the client size, with no input of its own', async () => {
    const { id } = await t.engine.run({ image: 'busybox', command: ['sleep', '300'], network: { networks: ['none'] } }, { detach: true });
    try {
      const out = sink();
      // vitest's worker has no controlling terminal: runc exec -t alone fails with "open /dev/tty".
      const res = await t.engine.containers.exec(id, { command: ['sh', '-c', 'tty; stty size; read -t 1 x && echo "input: $x"; exit 3'], tty: true }, { stdout: out.stream, terminal: fakeTerminal(33, 101) });
      expect(res.exitCode).toBe(3);
      expect(out.text()).toMatch(/^\/dev\/pts\/\d+\r\n33 101\r\n$/);
    } finally {
      await t.engine.containers.remove(id, { force: true });
    }
  });
});

async function logText(id: string): Promise<string> {
  let text = '';
  for await (const e of t.engine.containers.logs(id)) text += e.line + (e.partial ? '' : '\n');
  return text;
}
