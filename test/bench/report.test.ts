import { describe, expect, it } from 'vitest';
import { Report, timedWithCpu } from '../../bench/lib.js';

describe('bench Report targets (issue 20: same-run peers only)', () => {
  it('a target whose peer was only quoted is n/a, and the quoted row is labelled [quoted]', () => {
    const r = new Report('x', 'x');
    r.add({ label: 'berth run', role: 'berth', unit: 'ms', samples: [100, 120] });
    r.quote('podman run', 'ms', 196);
    r.target('CLI <= 0.8x podman', () => r.median('berth run') / r.peerMedian('podman run'), '<=', 0.8, 'x');
    expect(r.rows.map((row) => row.label)).toContain('podman run [quoted]');
    expect(r.targets[0]!.verdict).toBe('n/a');
    expect(r.targets[0]!.actual).toMatch(/not measured in this run/);
  });

  it('a peer measured in this run decides the target, with the ratio printed', () => {
    const r = new Report('x', 'x');
    r.add({ label: 'berth run', role: 'berth', unit: 'ms', samples: [100] });
    r.add({ label: 'podman run', role: 'peer', unit: 'ms', samples: [200] });
    r.quote('podman run', 'ms', 50);
    r.target('CLI <= 0.8x podman', () => r.median('berth run') / r.peerMedian('podman run'), '<=', 0.8, 'x');
    expect(r.targets[0]).toMatchObject({ verdict: 'PASS', actual: '0.50x (limit <= 0.80x)' });
  });

  it('"<" fails on equality; fastestPeer skips failed peers and throws when none was measured', () => {
    const r = new Report('x', 'x');
    r.add({ label: 'a', role: 'peer', unit: 'ms', samples: [300] });
    r.add({ label: 'b', role: 'peer', unit: 'ms', samples: [], error: 'dockerd did not come up' });
    r.target('under', () => 1, '<', 1, 'x');
    expect(r.targets[0]!.verdict).toBe('FAIL');
    expect(r.fastestPeer(['a', 'b'])).toEqual({ label: 'a', median: 300, measured: 1 });
    expect(() => r.fastestPeer(['b', 'c'])).toThrow(/no peer measured/);
  });
});

describe('timedWithCpu', () => {
  it('reads wall and CPU time of a command and the children it waited for', async () => {
    // The CPU is spent in a grandchild (sh -> sh loop), which RUSAGE_CHILDREN must include.
    const s = await timedWithCpu({ file: 'sh', args: ['-c', 'sh -c "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"'] });
    expect(Number.isFinite(s.wallMs)).toBe(true);
    expect(s.cpuMs).toBeGreaterThan(0);
  });

  it('rejects when the command fails', async () => {
    await expect(timedWithCpu({ file: 'sh', args: ['-c', 'exit 3'] })).rejects.toThrow();
  });
});
