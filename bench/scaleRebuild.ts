// Child of bench/scale.ts: a full rebuild of every projection from the store at BENCH_DB_URL, in a
// process of its own so that its peak RSS is the rebuild's alone. Prints one JSON line.
import { createDbPool } from '../src/db/pool.js';
import { createLogger } from '../src/logger.js';
import { defaultProjections } from '../src/projections/index.js';
import { ReplayEngine } from '../src/replay/ReplayEngine.js';

const url = process.env.BENCH_DB_URL;
if (!url) throw new Error('BENCH_DB_URL is required');
const pool = await createDbPool(url, { maximumPoolSize: 4 });
const engine = new ReplayEngine(pool, (_t, schemaVersion, payload) => ({ schemaVersion, payload }), createLogger('silent'));
const t0 = performance.now();
let events = 0;
for (const p of defaultProjections) events += (await engine.run(p, { jobId: `scale-${p.name}`, from: null, chunk: 1000 })).events;
const seconds = (performance.now() - t0) / 1000;
await pool.end();
// maxRSS is in kilobytes: the peak resident set of this process over its whole life.
console.log(JSON.stringify({ events, seconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
process.exit(0);
