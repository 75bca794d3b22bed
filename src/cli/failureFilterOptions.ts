import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { FailureFilterSchema, type FailureFilter } from '../consumers/bulkFailures.js';
import { CliError } from './runCli.js';

/** The failures explorer's filter as command-line options (events:failures, events:monitor --failures). */
export function withFailureFilterOptions(program: Command): Command {
  return program
    .option('--consumer <name>', 'only this consumer (handler or projection)')
    .option('--event-type <type>', 'only failures of this event type')
    .option('--grep <text>', 'only failures whose error message contains this text (case-insensitive)')
    .option('--since <time>', 'last failed at or after: ISO 8601 (2026-12-01T08:00:00Z) or a duration back from now (15m, 6h, 7d)')
    .option('--until <time>', 'last failed before: ISO 8601 or a duration back from now');
}

export interface FailureFilterOpts {
  consumer?: string;
  eventType?: string;
  grep?: string;
  since?: string;
  until?: string;
}

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `6h` → six hours ago; ISO text as is (validated with the API's own schema below). */
function toIso(option: string, raw: string, now: number): string {
  const rel = /^(\d{1,6})([mhd])$/.exec(raw.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]).toISOString();
  if (!/^\d{4}-\d\d-\d\dT/.test(raw) || Number.isNaN(Date.parse(raw))) throw new CliError(`--${option} must be an ISO 8601 date-time (2026-12-01T08:00:00Z) or a duration like 15m, 6h, 7d (got ${JSON.stringify(raw)})`);
  return raw;
}

/** The filter the options describe, checked by the same schema as the API's (exit 2 naming the option). */
export function failureFilterOf(o: FailureFilterOpts, now = Date.now()): FailureFilter {
  const raw = {
    consumer: o.consumer,
    eventType: o.eventType,
    q: o.grep,
    since: o.since === undefined ? undefined : toIso('since', o.since, now),
    until: o.until === undefined ? undefined : toIso('until', o.until, now),
  };
  const r = FailureFilterSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const option = { consumer: 'consumer', eventType: 'event-type', q: 'grep', since: 'since', until: 'until' }[String(issue.path[0])] ?? String(issue.path[0]);
    throw new CliError(`--${option}: ${issue.message}`);
  }
  return r.data;
}

/** Who a CLI action is audited as. */
export function cliActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (a container's uid): the environment's USER */
  }
  return `cli:${user}`;
}
