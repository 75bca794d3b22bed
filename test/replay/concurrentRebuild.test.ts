import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { TicketReadModelProjection } from '../../src/projections/index.js';
import { createReplayService, ReplayInProgressError, type ReplayApi } from '../../src/replay/ReplayService.js';
import { startHarness, type Harness } from '../http/support.js';
import { waitFor } from '../support/db.js';

let h: Harness;
let service: ReplayApi;
const name = TicketReadModelProjection.name;

beforeAll(async () => {
  h = await startHarness('concurrent_rebuild');
  service = createReplayService({ pool: h.c.pool, queue: h.c.queues.replay, projections: h.c.projections, defaultChunk: 100 });
  const gen = createEventGenerator({ seed: 5, streams: 50, runId: 'cr' });
  await h.c.bus.dispatchMany(gen.batch(500));
});
afterAll(async () => {
  await h?.close();
});

const replayJobs = async () => {
  const jobs = await h.c.queues.replay.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
  return jobs.filter(Boolean);
};

describe('two-concurrent-rebuilds-become-one', () => {
  it('concurrent enqueue calls and API posts for one projection return the same job id, and one rebuild runs', async () => {
    // No replay worker yet, so the job stays waiting while the requests race.
    const direct = await Promise.all(Array.from({ length: 4 }, () => service.enqueue({ projection: name })));
    const api = await Promise.all([0, 1].map(() => h.api('POST', `/api/events/projections/${name}/rebuild`)));
    for (const r of api) expect(r.status, r.text).toBe(202);
    const ids = new Set([...direct.map((d) => d.jobId), ...api.map((r) => r.body.data.jobId as string)]);
    expect(ids.size, [...ids].join(' ')).toBe(1);
    const [jobId] = [...ids] as [string];
    expect(direct.filter((d) => !d.alreadyQueued)).toHaveLength(1);
    expect(api.every((r) => r.body.data.alreadyQueued === true)).toBe(true);
    expect((await replayJobs()).map((j) => j.id)).toEqual([jobId]);

    // A request overlapping it with a different set (all projections) is still refused.
    await expect(service.enqueue({})).rejects.toBeInstanceOf(ReplayInProgressError);

    const replay = startReplayWorker(h.c);
    try {
      // Requests while it runs join it too.
      const during = await Promise.all([0, 1].map(() => service.enqueue({ projection: name })));
      expect(during.map((d) => d.jobId)).toEqual([jobId, jobId]);
      const done = await waitFor(async () => {
        const s = await service.status(jobId);
        return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
      }, { timeoutMs: 60_000, intervalMs: 100, what: 'the rebuild' });
      expect(done!.state, done!.failedReason ?? '').toBe('completed');
      expect((await replayJobs()).map((j) => j.id)).toEqual([jobId]);

      // Once it has finished, a new request is a new rebuild.
      const next = await service.enqueue({ projection: name });
      expect(next.jobId).not.toBe(jobId);
      expect(next.alreadyQueued).toBe(false);
      await waitFor(async () => (await service.status(next.jobId))?.state === 'completed', { timeoutMs: 60_000, intervalMs: 100, what: 'the second rebuild' });
    } finally {
      await replay.close(5000);
    }
  });
});
