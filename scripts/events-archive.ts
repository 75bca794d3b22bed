// npm run events:archive -- --before=<ISO date|duration> [--ledger-before=…] [--failures-before=…] [--chunk=N] [--dry-run] [--json]
// Retention: moves the events of streams whose last event is older than --before from event_store to
// event_store_archive (positions kept, chunked, resumable), and deletes handler-ledger rows of archived
// events and resolved failures older than their own cut-offs. README: "Retention and archiving".
import { Command } from 'commander';
import { CliError, parseArgs, parseNonNegativeInt, runCli, table } from '../src/cli/runCli.js';
import { pruneFailures, pruneLedger, settledStreams } from '../src/consumers/retention.js';
import { archiveCandidates, archiveEvents } from '../src/eventStore/archive.js';

const program = new Command('events:archive')
  .description(
    'Move the events of streams whose last event is older than --before out of event_store into event_store_archive\n' +
      '(global positions and versions kept; a stream with work still owed, an open failure or a parked projection stays).\n' +
      'One transaction per chunk of streams: a killed run loses nothing and a re-run continues. Rebuilds read the archive.',
  )
  .option('--before <when>', 'archive streams whose last event is older than this: an ISO date or a duration ago (90d, 12h, 2w, 30m)')
  .option('--ledger-before <when>', 'also delete handler-ledger rows of archived events processed before this')
  .option('--failures-before <when>', 'also delete resolved failures resolved before this (skipped ones are kept: rebuilds need them)')
  .option('--chunk <n>', 'streams per transaction (default 500)', parseNonNegativeInt('chunk'))
  .option('--dry-run', 'report what would be archived or deleted; change nothing')
  .option('--json', 'machine-readable output');

type Opts = { before?: string; ledgerBefore?: string; failuresBefore?: string; chunk?: number; dryRun?: boolean; json?: boolean };

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** An ISO date or a duration before now; never in the future. */
export function parseCutoff(option: string, value: string, now = Date.now()): Date {
  const d = /^(\d+)([smhdw])$/.exec(value.trim());
  const at = d ? new Date(now - Number(d[1]) * UNITS[d[2]!]!) : /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : null;
  if (!at || Number.isNaN(at.getTime())) throw new CliError(`--${option} must be an ISO date (2026-01-31 or 2026-01-31T12:00:00Z) or a duration like 90d, 12h, 2w, 30m (got ${JSON.stringify(value)})`);
  if (at.getTime() > now) throw new CliError(`--${option} ${value} is in the future; nothing newer than now can be archived`);
  return at;
}

await runCli(async (c) => {
  if (!parseArgs(program)) return 0;
  const o = program.opts<Opts>();
  if (!o.before && !o.ledgerBefore && !o.failuresBefore) throw new CliError('give --before (events), --ledger-before and/or --failures-before; see --help');
  if (o.chunk === 0) throw new CliError('--chunk must be at least 1');
  const before = o.before ? parseCutoff('before', o.before) : null;
  const ledgerBefore = o.ledgerBefore ? parseCutoff('ledger-before', o.ledgerBefore) : null;
  const failuresBefore = o.failuresBefore ? parseCutoff('failures-before', o.failuresBefore) : null;
  const out: Record<string, unknown> = { dryRun: o.dryRun === true };
  const rows: Record<string, unknown>[] = [];

  if (before) {
    if (o.dryRun) {
      const p = await archiveCandidates(c.pool, before);
      out.events = { before: before.toISOString(), ...p };
      rows.push({ what: 'events', cutoff: before.toISOString(), streams: p.streams, rows: p.events, bytes: `~${p.bytesEstimate.toLocaleString('en-US')}` });
    } else {
      const r = await archiveEvents(c.pool, {
        before,
        chunkStreams: o.chunk,
        settled: settledStreams,
        onChunk: (p) => {
          if (!o.json) console.log(`chunk ${p.chunk}: ${p.streams} streams, ${p.events} events archived so far`);
        },
        // Test hook (archive-killed-half-way-resumes): die inside chunk N, before its commit.
        crashInChunk: process.env.HDT_ARCHIVE_CRASH_IN_CHUNK ? { chunk: Number(process.env.HDT_ARCHIVE_CRASH_IN_CHUNK), crash: () => process.kill(process.pid, 'SIGKILL') } : undefined,
      });
      out.events = { before: before.toISOString(), streams: r.streams, events: r.events, bytes: r.bytes, chunks: r.chunk, skippedUnsettled: r.skippedUnsettled };
      rows.push({ what: 'events', cutoff: before.toISOString(), streams: r.streams, rows: r.events, bytes: r.bytes, 'left (work owed)': r.skippedUnsettled });
    }
  }
  if (ledgerBefore) {
    const r = await pruneLedger(c.pool, { before: ledgerBefore, dryRun: o.dryRun });
    out.ledger = { before: ledgerBefore.toISOString(), rows: r.rows };
    rows.push({ what: 'handler ledger (archived events)', cutoff: ledgerBefore.toISOString(), rows: r.rows });
  }
  if (failuresBefore) {
    const r = await pruneFailures(c.pool, { before: failuresBefore, dryRun: o.dryRun });
    out.failures = { before: failuresBefore.toISOString(), rows: r.rows };
    rows.push({ what: 'resolved failures', cutoff: failuresBefore.toISOString(), rows: r.rows });
  }
  if (o.json) console.log(JSON.stringify(out));
  else {
    console.log(table(rows, ['what', 'cutoff', 'streams', 'rows', 'bytes', 'left (work owed)']));
    console.log(o.dryRun ? '\nDry run: nothing was changed.' : '\nDone. Rebuilds (npm run events:replay) read the archive too.');
  }
  return 0;
});
