import { describe, expect, it } from 'vitest';
import { ProcessGate } from '../../src/projections/processGate.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('ProcessGate (one live catch-up per projection in a process)', () => {
  it('same-projection-jobs-take-turns: a second holder of a key starts only once the first is done; other keys do not wait', async () => {
    const gate = new ProcessGate();
    const log: string[] = [];
    let releaseA!: () => void;
    const a = gate.with(['ticket'], async () => {
      log.push('a start');
      await new Promise<void>((r) => (releaseA = r));
      log.push('a end');
    });
    const b = gate.with(['ticket', 'purchase'], async () => void log.push('b'));
    const c = gate.with(['monitoring'], async () => void log.push('c'));
    for (let i = 0; i < 5; i++) await tick();
    expect(log).toEqual(['a start', 'c']);
    releaseA();
    await Promise.all([a, b, c]);
    expect(log).toEqual(['a start', 'c', 'a end', 'b']);
  });

  it('a-failing-holder-releases: an error in one holder lets the next one run', async () => {
    const gate = new ProcessGate();
    await expect(gate.with(['x'], async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate.with(['x'], async () => 42)).resolves.toBe(42);
  });
});
