// npm run events:failures -- list|retry|resolve [--consumer X] [--event-type T] [--grep TEXT]
//                             [--since ISO|6h] [--until ISO|1h] [--dry-run] [--note TEXT] [--json]
// The failures explorer on the command line: list what a filter matches, or retry / resolve all of it
// (the same bulk actions as POST /api/events/failures/retry|resolve, audited as cli:<user>).
import { Command } from 'commander';
import { OperatorActions } from '../src/app/operatorActions.js';
import { listFailures } from '../src/consumers/bulkFailures.js';
import { failureFilterOf, cliActor, withFailureFilterOptions, type FailureFilterOpts } from '../src/cli/failureFilterOptions.js';
import { CliError, parseArgs, runCli, table } from '../src/cli/runCli.js';

const program = withFailureFilterOptions(
  new Command('events:failures')
    .description('List, retry or resolve the processing failures a filter matches. retry/resolve act on open failures; --dry-run only counts them.')
    .argument('<action>', 'list | retry | resolve'),
)
  .option('--status <status>', 'list only: open (default), retrying, resolved or all', 'open')
  .option('--limit <n>', 'list only: rows to show (1–500, default 50)', '50')
  .option('--dry-run', 'retry/resolve: show how many failures (per consumer) would be acted on, change nothing')
  .option('--note <text>', 'resolve: why these failures need no processing (required)')
  .option('--json', 'machine-readable output');

type Opts = FailureFilterOpts & { status: string; limit: string; dryRun?: boolean; note?: string; json?: boolean };

await runCli(async (c) => {
  if (!parseArgs(program)) return 0;
  const action = program.args[0]!;
  const o = program.opts<Opts>();
  if (!['list', 'retry', 'resolve'].includes(action)) throw new CliError(`unknown action ${JSON.stringify(action)}: use list, retry or resolve`);
  const filter = failureFilterOf(o);
  const print = (data: unknown, text: string) => console.log(o.json ? JSON.stringify(data) : text);

  if (action === 'list') {
    if (!['open', 'retrying', 'resolved', 'all'].includes(o.status)) throw new CliError(`--status must be open, retrying, resolved or all (got ${JSON.stringify(o.status)})`);
    if (!/^\d{1,3}$/.test(o.limit) || Number(o.limit) < 1 || Number(o.limit) > 500) throw new CliError(`--limit must be a whole number from 1 to 500 (got ${JSON.stringify(o.limit)})`);
    const page = await listFailures(c.pool, filter, { status: o.status as 'open', limit: Number(o.limit) });
    const rows = page.failures.map((f) => ({ id: f.id, consumer: f.consumer, event: `${f.event_type} ${f.event_id}`, stream: f.stream_id, attempts: f.attempts, status: f.status, error: f.error_message.split('\n')[0], 'last failed': f.last_failed_at }));
    print(page, `${table(rows)}\n\n${page.failures.length} of ${page.total} shown. Retry them all: npm run events:failures -- retry <same filters> [--dry-run]`);
    return 0;
  }
  if (action === 'resolve' && !o.dryRun && !o.note?.trim()) throw new CliError('resolve needs --note "why these failures need no processing" (or --dry-run to preview)');
  if (o.note !== undefined && action !== 'resolve') throw new CliError('--note only applies to resolve');
  const actions = new OperatorActions(c);
  const actor = cliActor();
  const r = action === 'retry' ? await actions.bulkRetry(filter, { actor, dryRun: o.dryRun }) : await actions.bulkResolve(filter, { actor, dryRun: o.dryRun, note: o.note });
  const per = table(Object.entries(r.byConsumer).map(([consumer, n]) => ({ consumer, failures: n })));
  const verb = action === 'retry' ? 'retried' : 'resolved';
  print(
    r,
    r.dryRun
      ? `Dry run: ${r.matched} open failure(s) would be ${verb}; nothing changed.\n${per}`
      : `${r.matched} failure(s) ${verb}${action === 'retry' ? ` in ${(r as { jobs: number }).jobs} job(s); each is resolved when its job succeeds` : ''} (audit #${r.auditId}, as ${actor}).\n${per}`,
  );
  return 0;
});
