// npm run events:replay -- [--projection=NAME] [--from=POSITION] [--chunk=N] [--dry-run] [--wait]
import { SingleBar, Presets } from 'cli-progress';
import { Command } from 'commander';
import { CliError, parseArgs, parseNonNegativeInt, runCli, table } from '../src/cli/runCli.js';
import { createReplayService, ReplayInProgressError, UnknownProjectionError, type ReplayProgress } from '../src/replay/ReplayService.js';
import { startReplayWorker } from '../src/app/replayWorker.js';
import { audit } from '../src/app/operatorActions.js';
import { cliActor } from '../src/cli/failureFilterOptions.js';

const program = new Command('events:replay')
  .description(
    'Rebuild projections by replaying the event store (a chunked, resumable job on the replay queue).\n' +
      'Without --from: a zero-downtime full rebuild into a new table generation, switched over atomically.\n' +
      '--from=N: no reset; each stream gets the events at or after global position N that the projection has\n' +
      'not applied yet (per-stream checkpoints make re-running a range harmless); use it to feed a projection\n' +
      'added later without rebuilding from the beginning.',
  )
  .option('--projection <name>', 'one projection (default: all)')
  .option('--from <position>', 'start at this global position, without a reset', parseNonNegativeInt('from'))
  .option('--chunk <n>', 'events per chunk (one transaction each)', parseNonNegativeInt('chunk'))
  .option('--dry-run', 'show what would be rebuilt and an estimate; write nothing')
  .option('--wait', 'show progress until done; exit non-zero if the replay fails')
  .option('--json', 'machine-readable output');

type Opts = { projection?: string; from?: number; chunk?: number; dryRun?: boolean; wait?: boolean; json?: boolean };

await runCli(async (c) => {
  if (!parseArgs(program)) return 0;
  const opts = program.opts<Opts>();
  if (opts.chunk === 0) throw new CliError('--chunk must be at least 1');
  const service = createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: c.config.REPLAY_CHUNK_SIZE });
  const request = { projection: opts.projection, from: opts.from, chunk: opts.chunk };
  try {
    if (opts.dryRun) {
      const report = await service.dryRun(request);
      if (opts.json) console.log(JSON.stringify({ dryRun: true, ...report }));
      else {
        console.log(table(report.projections.map((p) => ({ projection: p.name, 'events to replay': p.events, 'current rows': p.rows, table: p.table }))));
        console.log(`\n${report.events.toLocaleString('en-US')} events in total; estimated ${report.estimatedSeconds} s. Dry run: nothing was written.`);
      }
      return 0;
    }
    const { jobId, projections, alreadyQueued } = await service.enqueue(request);
    await audit(c.pool, { actor: cliActor(), action: 'rebuild', filter: { projection: opts.projection ?? null }, counts: { projections: projections.length }, details: { jobId, projections, alreadyQueued, from: opts.from ?? null, chunk: opts.chunk ?? null } });
    // A rebuild of the same projections already waiting or running is joined, not doubled.
    if (alreadyQueued && !opts.json) console.error(`A replay of ${projections.join(', ')} is already queued or running as job ${jobId}; following that one.`);
    if (!opts.wait) {
      console.log(opts.json ? JSON.stringify({ jobId, projections, alreadyQueued }) : `Replay ${alreadyQueued ? 'already queued' : 'queued'} as job ${jobId} for ${projections.join(', ')}.\nFollow it with: npm run events:monitor -- --projections  (or GET /api/events/replays/${jobId})`);
      return 0;
    }
    return await waitFor(jobId, projections, service, c, opts.json === true);
  } catch (e) {
    if (e instanceof UnknownProjectionError || e instanceof ReplayInProgressError || e instanceof RangeError) throw new CliError(e.message);
    throw e;
  }
});

async function waitFor(jobId: string, projections: string[], service: ReturnType<typeof createReplayService>, c: Parameters<Parameters<typeof runCli>[0]>[0], json: boolean): Promise<number> {
  const bar = process.stdout.isTTY && !json ? new SingleBar({ format: '{projection} |{bar}| {percentage}% {value}/{total} events · {rate} ev/s · ETA {eta_formatted}', hideCursor: true }, Presets.shades_classic) : null;
  let started = false;
  let local: ReturnType<typeof startReplayWorker> | null = null;
  const since = Date.now();
  let lastLine = '';
  for (;;) {
    const s = await service.status(jobId);
    if (!s) throw new CliError(`replay job ${jobId} disappeared from the queue`, 1);
    if (s.state === 'waiting' && !local && Date.now() - since > 3000 && (await c.queues.replay.getWorkers()).length === 0) {
      // Nobody runs the replay queue (no `replay` process): run it here rather than wait forever.
      console.error('No replay worker is running; replaying in this process.');
      local = startReplayWorker(c);
    }
    const p = s.progress as (ReplayProgress & { index?: number; of?: number }) | null;
    if (p && p.total >= 0) {
      const label = `${p.projection ?? ''}${p.of && p.of > 1 ? ` (${(p.index ?? 0) + 1}/${p.of})` : ''}`;
      if (bar) {
        if (!started) {
          bar.start(Math.max(1, p.total), p.done, { projection: label, rate: p.eventsPerSecond });
          started = true;
        }
        bar.setTotal(Math.max(1, p.total));
        bar.update(p.done, { projection: label, rate: p.eventsPerSecond });
      } else {
        const line = json ? JSON.stringify({ jobId, state: s.state, ...p }) : `${label}: ${p.done}/${p.total} events (${p.phase})`;
        if (line !== lastLine) console.log(line);
        lastLine = line;
      }
    }
    if (s.state === 'completed' || s.state === 'failed') {
      bar?.stop();
      await local?.close(5000);
      if (s.state === 'failed') {
        console.error(`Replay ${jobId} failed: ${s.failedReason ?? 'unknown reason'}`);
        return 1;
      }
      const result = s.result as { projections?: { projection: string; events: number; durationMs: number; resumedFrom: number }[] } | null;
      if (json) console.log(JSON.stringify({ jobId, state: s.state, result }));
      else {
        console.log(table((result?.projections ?? []).map((r) => ({ projection: r.projection, events: r.events, 'seconds': (r.durationMs / 1000).toFixed(1), 'resumed from': r.resumedFrom }))));
        console.log(`Replay ${jobId} of ${projections.join(', ')} completed.`);
      }
      return 0;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
