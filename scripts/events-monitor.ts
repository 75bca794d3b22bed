// npm run events:monitor -- [--stats] [--failures [--consumer X] [--event-type T] [--grep TEXT] [--since T] [--until T]]
//                           [--projections] [--watch] [--json] [--retry ID] [--resolve ID --note TEXT]
import { Command } from 'commander';
import { sql } from 'slonik';
import { z } from 'zod';
import { CliError, parseArgs, parseNonNegativeInt, runCli, table } from '../src/cli/runCli.js';
import { OperatorActions } from '../src/app/operatorActions.js';
import { cliActor, failureFilterOf, withFailureFilterOptions, type FailureFilterOpts } from '../src/cli/failureFilterOptions.js';
import { listFailures } from '../src/consumers/bulkFailures.js';
import { eventTotals } from '../src/eventStore/counters.js';
import { FailureNotFoundError, FailureStateError } from '../src/consumers/failures.js';
import { readTailPage, tailHead } from '../src/eventStore/globalTail.js';
import { overview } from '../src/http/queries/overview.js';
import { statistics } from '../src/http/queries/statistics.js';
import { projectionStatuses } from '../src/projections/status.js';

const program = withFailureFilterOptions(new Command('events:monitor')
  .description('Overview of the event platform; --stats, --failures, --projections for details; --watch to follow live.')
  .option('--stats', 'rates per minute/hour, top event types, per-platform counts')
  .option('--failures', 'open processing failures')
  .option('--projections', 'projection status, checkpoints, lag, rows, last rebuild')
  .option('--watch', 'live tail of new events and processing, refreshed in place (Ctrl-C to exit)')
  .option('--json', 'machine-readable output')
  .option('--retry <id>', 're-run a recorded failure with a fresh job', parseNonNegativeInt('retry'))
  .option('--resolve <id>', 'mark a failure resolved without running it (needs --note)', parseNonNegativeInt('resolve'))
  .option('--note <text>', 'why the failure is resolved'));

type Opts = FailureFilterOpts & { stats?: boolean; failures?: boolean; projections?: boolean; watch?: boolean; json?: boolean; retry?: number; resolve?: number; note?: string };

const SizeRow = z.object({ bytes: z.number() });

await runCli(async (c) => {
  if (!parseArgs(program)) return 0;
  const o = program.opts<Opts>();
  const filter = failureFilterOf(o);
  const filtered = Object.keys(filter).length > 0;
  if (filtered && !o.failures) throw new CliError('--consumer, --event-type, --grep, --since and --until filter --failures (add --failures, or use npm run events:failures)');
  const actions = new OperatorActions(c);
  const out = (title: string, data: unknown, render: () => string) => (o.json ? console.log(JSON.stringify({ [title]: data })) : console.log(`\n${title}\n${render()}`));

  try {
    if (o.retry !== undefined) {
      const { jobId } = await actions.retryOne(o.retry, cliActor());
      console.log(o.json ? JSON.stringify({ retried: o.retry, jobId }) : `Failure ${o.retry} re-enqueued as job ${jobId}; it is marked resolved when the job succeeds.`);
      return 0;
    }
    if (o.resolve !== undefined) {
      if (!o.note?.trim()) throw new CliError('--resolve needs --note "why this failure needs no processing"');
      const { failure: f } = await actions.resolveOne(o.resolve, o.note.trim(), cliActor());
      console.log(o.json ? JSON.stringify({ resolved: f.id }) : `Failure ${f.id} resolved: ${f.resolution_note}`);
      return 0;
    }
  } catch (e) {
    if (e instanceof FailureNotFoundError || e instanceof FailureStateError) throw new CliError(e.message);
    throw e;
  }

  if (o.watch) return watch(c);

  const ov = await overview(c.pool, c.queues);
  // Streams from the append counters (streams created), not count(*) over event_streams.
  const [size, totals] = await Promise.all([c.pool.one(sql.type(SizeRow)`SELECT pg_total_relation_size('event_store') AS bytes`), eventTotals(c.pool)]);
  const summary = {
    total_events: ov.total_events,
    events_today: ov.events_today,
    streams: totals.streams,
    store_size_mb: Math.round((size.bytes / 2 ** 20) * 10) / 10,
    outbox_backlog: ov.outbox.backlog,
    owed_events: ov.owed.events,
    open_failures: ov.failed_processing,
    active_projections: ov.active_projections,
  };
  out('overview', { ...summary, event_types: ov.event_types, queues: ov.queues, owed: ov.owed }, () =>
    [
      table([summary]),
      '',
      // Owed work per consumer, from Postgres: what Redis lost or no live worker runs still shows here.
      table(ov.owed.consumers.map((w) => ({ consumer: w.consumer, kind: w.kind, 'owed events': w.events, 'oldest owed s': Math.round(w.oldestSeconds * 10) / 10, 'live worker': w.liveWorker ? 'yes' : 'NO' }))),
      ...(ov.owed.withoutLiveWorker.length ? [`No live worker runs: ${ov.owed.withoutLiveWorker.join(', ')} (start one, or retire it: npm run events:consumers -- --remove NAME)`] : []),
      '',
      table(ov.event_types.map((t) => ({ 'event type': t.type, count: t.count }))),
      '',
      table(Object.entries(ov.queues ?? {}).map(([q, d]) => ({ queue: q, ...d }))),
    ].join('\n'),
  );

  if (o.stats) {
    const since = new Date(Date.now() - 24 * 3600 * 1000);
    const s = await statistics(c.pool, since);
    out('statistics (last 24 h)', s, () =>
      [
        `events/min (last 5 min): ${Math.round(s.rates.eventsPerSecondLast5m * 60)}   events/hour (24 h average): ${Math.round(s.rates.eventsPerSecond * 3600)}   handled/min: ${Math.round(s.rates.handledPerSecondLast5m * 60)}`,
        `processing lag p50 ${s.processing.p50Seconds ?? '-'} s, p99 ${s.processing.p99Seconds ?? '-'} s`,
        '',
        table(s.byType.slice(0, 10).map((t) => ({ 'top event types': t.type, count: t.count }))),
        '',
        table(s.byPlatform.map((p) => ({ platform: p.platform, events: p.count }))),
      ].join('\n'),
    );
  }
  if (o.failures) {
    const list = (await listFailures(c.pool, filter, { status: 'open', limit: 100 })).failures;
    const retrying = (await listFailures(c.pool, filter, { status: 'retrying', limit: 100 })).failures;
    const rows = [...list, ...retrying].map((f) => ({ id: f.id, consumer: f.consumer, event: `${f.event_type} ${f.event_id}`, stream: f.stream_id, attempts: f.attempts, status: f.status, 'last error': f.error_message.split('\n')[0], 'last failed': f.last_failed_at }));
    out('failures', [...list, ...retrying], () => `${table(rows)}\n\nRetry: npm run events:monitor -- --retry ID    Resolve: npm run events:monitor -- --resolve ID --note "why"\nAll that match a filter: npm run events:failures -- retry|resolve --consumer X --since 6h [--dry-run]`);
  }
  if (o.projections) {
    const ps = await projectionStatuses(c.pool, c.projections, ov.owed.consumers);
    out('projections', ps, () =>
      table(
        ps.map((p) => ({
          projection: p.name,
          version: p.version,
          status: p.status,
          generation: p.generation,
          checkpoint: p.checkpointPosition,
          'lag events': p.lagEvents,
          owed: p.owedEvents,
          'lag s': Math.round(p.lagSeconds * 10) / 10,
          rows: `${p.rowsEstimated ? '~' : ''}${p.rows}`,
          parked: p.parkedStreams,
          'last updated': p.lastUpdatedAt,
          'last rebuild s': p.lastRebuild?.durationMs ? (p.lastRebuild.durationMs / 1000).toFixed(1) : '',
        })),
      ),
    );
  }
  return 0;
});

/** Live tail: new events as they are stored plus a processing summary line, until Ctrl-C. */
async function watch(c: Parameters<Parameters<typeof runCli>[0]>[0]): Promise<number> {
  const o = program.opts<Opts>();
  // The gap-free order (below the xmin horizon, paged by the (transaction, position) pair): a tail of
  // `global_position > last` skipped events whose transaction committed after a later one's.
  let last = await tailHead(c.pool);
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  process.once('SIGTERM', () => (stop = true));
  const tty = process.stdout.isTTY && !o.json;
  let lastLine = '';
  while (!stop) {
    const rows = await readTailPage(c.pool, last, { limit: 200 });
    for (const r of rows) {
      const line = { global_position: r.global_position, event_type: r.event_type, stream_id: r.stream_id, recorded_at: r.recorded_at };
      console.log(o.json ? JSON.stringify(line) : `${r.recorded_at}  #${r.global_position}  ${r.event_type.padEnd(26)} ${r.stream_id}`);
    }
    const newest = rows[rows.length - 1];
    if (newest) last = { transactionId: newest.transaction_id, position: newest.global_position };
    const ov = await overview(c.pool, c.queues);
    const waiting = Object.values(ov.queues ?? {}).reduce((n, d) => n + (d.waiting ?? 0) + (d.active ?? 0) + (d.delayed ?? 0), 0);
    const line = `events ${ov.total_events.toLocaleString('en-US')} · owed ${ov.owed.events} · jobs pending ${waiting} · outbox ${ov.outbox.backlog} · open failures ${ov.failed_processing}`;
    if (tty) process.stdout.write(`\x1b[2K\r${line}`);
    // Piped to a file or another program: a new line only when something changed.
    else if (line !== lastLine) console.log(o.json ? JSON.stringify({ status: line }) : line);
    lastLine = line;
    await new Promise((r) => setTimeout(r, 1000));
    if (tty && !stop) process.stdout.write('\x1b[2K\r');
  }
  if (tty) process.stdout.write('\n');
  return 0;
}
