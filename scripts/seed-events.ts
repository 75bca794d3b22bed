// npm run events:seed -- [--events=200000] [--streams=20000] [--batch=500] [--seed=42]
// Appends generated, valid events (tickets, purchases, monitors, scraping jobs, platform status)
// through the event bus, so running workers process them like live traffic.
import { Command, InvalidArgumentError } from 'commander';
import { createContainer } from '../src/app/container.js';
import { checkServices, PreflightError } from '../src/app/preflight.js';
import { EXIT } from '../src/exitCodes.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { seedEvents } from '../src/demo/seed.js';
import { createLogger } from '../src/logger.js';

const positiveInt = (max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be an integer between 1 and ${max}`);
  return n;
};

const program = new Command('events:seed')
  .description('append generated events through the event bus')
  .option('--events <n>', 'number of events', positiveInt(10_000_000), 200_000)
  .option('--streams <n>', 'number of streams', positiveInt(10_000_000), 20_000)
  .option('--batch <n>', 'events per append transaction', positiveInt(1000), 500)
  .option('--seed <n>', 'random seed (same seed, same events)', positiveInt(2 ** 31), 42)
  .parse();
const opts = program.opts<{ events: number; streams: number; batch: number; seed: number }>();

try {
  const config = loadConfig();
  await checkServices(config);
  const c = await createContainer(config, createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL));
  const gen = createEventGenerator({ seed: opts.seed, streams: opts.streams, runId: `seed${opts.seed}` });
  const t0 = Date.now();
  await seedEvents(c.bus, gen, {
    events: opts.events,
    batch: opts.batch,
    onProgress: (done) => process.stdout.isTTY && process.stdout.write(`\rseeded ${done.toLocaleString('en-US')} / ${opts.events.toLocaleString('en-US')}`),
  });
  const secs = (Date.now() - t0) / 1000;
  console.log(`${process.stdout.isTTY ? '\n' : ''}seeded ${opts.events} events over ${opts.streams} streams in ${secs.toFixed(1)} s (${Math.round(opts.events / secs)} events/s)`);
  await c.close();
} catch (error) {
  if (error instanceof ConfigError || error instanceof PreflightError) {
    console.error(error.message);
    process.exit(error instanceof ConfigError ? EXIT.CONFIG : EXIT.NOT_READY);
  }
  throw error;
}
