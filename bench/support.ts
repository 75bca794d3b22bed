import os from 'node:os';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { runMigrations } from '../src/db/migrate.js';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function freshDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hdt_bench_${label}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  await runMigrations(u.toString());
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length}× ${cpus[0]?.model.trim() ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export interface Row {
  benchmark: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
}

export function printTable(title: string, rows: Row[]): void {
  console.log(`\n## ${title}\nmachine: ${machine()}\ndate: ${new Date().toISOString()}\n`);
  const lines = rows.map((r) => [
    r.benchmark,
    `${Math.round(r.value).toLocaleString('en-US')} ${r.unit}`,
    r.baseline ?? '',
    r.baselineValue !== undefined ? `${Math.round(r.baselineValue).toLocaleString('en-US')} ${r.unit}` : '',
    r.baselineValue ? `${(r.value / r.baselineValue).toFixed(2)}×` : '',
  ]);
  const header = ['benchmark', 'result', 'baseline (same run)', 'baseline result', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // Odd counts (BENCH_RUNS 3): the middle one; even counts: the mean of the two middle ones.
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * The one machine-readable line each bench ends with: `RESULT name=value name=value …`. Rates and
 * milliseconds of 100 or more are rounded to integers; ratios and shares keep three decimals.
 */
export function resultLine(fields: Record<string, number>): string {
  const fmt = (v: number) => (!Number.isFinite(v) ? String(v) : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toFixed(3))));
  return `RESULT ${Object.entries(fields).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`;
}
