// npm run events:consumers -- [--json] [--remove NAME]
// The consumer registry: every handler and projection some process knows, whether a live worker runs
// it, and what it still owes. --remove retires a consumer that was taken out of the code.
import { Command } from 'commander';
import { owedSummary } from '../src/consumers/owedWork.js';
import { listConsumers, unregisterConsumer } from '../src/consumers/registry.js';
import { CliError, parseArgs, runCli, table } from '../src/cli/runCli.js';

const program = new Command('events:consumers')
  .description('List registered consumers (live worker? events owed?); --remove NAME retires one and drops what it was owed.')
  .option('--remove <name>', 'unregister a consumer no process runs any more (its owed work is dropped)')
  .option('--json', 'machine-readable output');

await runCli(async (c) => {
  if (!parseArgs(program)) return 0;
  const o = program.opts<{ remove?: string; json?: boolean }>();
  if (o.remove !== undefined) {
    const r = await unregisterConsumer(c.pool, o.remove);
    if (!r.removed) {
      const known = (await listConsumers(c.pool)).map((x) => x.name);
      throw new CliError(`no registered consumer named ${JSON.stringify(o.remove)}; registered: ${known.join(', ') || '(none)'}`);
    }
    console.log(o.json ? JSON.stringify({ removed: o.remove, owedDropped: r.owedDropped }) : `Consumer ${o.remove} unregistered; ${r.owedDropped} owed event(s) dropped. A process that still runs it registers it again.`);
    return 0;
  }
  const [consumers, owed] = await Promise.all([listConsumers(c.pool), owedSummary(c.pool)]);
  const owedOf = new Map(owed.map((w) => [w.consumer, w]));
  const rows = consumers.map((x) => ({
    consumer: x.name,
    kind: x.kind,
    version: x.version,
    'event types': x.event_types.length,
    registered: x.registered_at,
    'last heartbeat': x.last_seen_at ?? 'never',
    'live worker': x.live ? 'yes' : 'NO',
    'owed events': owedOf.get(x.name)?.events ?? 0,
    'oldest owed s': Math.round((owedOf.get(x.name)?.oldestSeconds ?? 0) * 10) / 10,
  }));
  console.log(o.json ? JSON.stringify({ consumers: consumers.map((x) => ({ ...x, owed: owedOf.get(x.name) ?? null })) }) : table(rows));
  return 0;
});
