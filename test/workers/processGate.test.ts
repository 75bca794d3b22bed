import { describe, expect, it } from 'vitest';
import { ProcessGate } from '../../src/projections/processGate.js';

const tick = () => new Promise((r) => setImmediate(r));
const streams = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `s${from + i}`);

describe('ProcessGate (live catch-ups of one projection in a process)', () => {
  it('overlapping-jobs-take-turns: a job sharing much of a running job’s streams waits for it; one sharing little, or another projection, runs beside it', async () => {
    const gate = new ProcessGate(0.2);
    const log: string[] = [];
    let releaseA!: () => void;
    const a = gate.with([{ projection: 'ticket', streams: streams(0, 100) }], async () => {
      log.push('a start');
      await new Promise<void>((r) => (releaseA = r));
      log.push('a end');
    });
    // 50 % of its streams are a's: waits.
    const b = gate.with([{ projection: 'ticket', streams: streams(50, 150) }], async () => void log.push('b'));
    // 5 % shared: runs now, as does another projection over the same streams.
    const c = gate.with([{ projection: 'ticket', streams: streams(95, 195) }], async () => void log.push('c'));
    const d = gate.with([{ projection: 'purchase', streams: streams(0, 100) }], async () => void log.push('d'));
    for (let i = 0; i < 5; i++) await tick();
    expect(log).toEqual(['a start', 'c', 'd']);
    releaseA();
    await Promise.all([a, b, c, d]);
    expect(log).toEqual(['a start', 'c', 'd', 'a end', 'b']);
  });

  it('a-failing-holder-releases: an error in one job lets the next one run', async () => {
    const gate = new ProcessGate();
    await expect(gate.with([{ projection: 'x', streams: ['s'] }], async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.with([{ projection: 'x', streams: ['s'] }], async () => 42)).resolves.toBe(42);
  });
});
