import { createContainer, type Container, type ContainerOptions } from '../../src/app/container.js';
import { owedSummary } from '../../src/consumers/owedWork.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { TEST_QUEUE_BACKEND } from './backend.js';

/** A container wired like a real process, against a test database and a test-only queue prefix. */
export async function testContainer(env: Record<string, string>, options: ContainerOptions = {}): Promise<Container> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', QUEUE_BACKEND: TEST_QUEUE_BACKEND, ...env });
  return createContainer(config, createLogger(config.LOG_LEVEL), options);
}

/** Job counts summed over the shared queues and the own queue of every consumer the container knows. */
export async function queueCounts(c: Container): Promise<Record<string, number>> {
  const queues = [c.queues.handlers, c.queues.projections, ...c.routes.map((r) => c.consumerQueues.own(r.name))];
  const all = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed')));
  const sum: Record<string, number> = {};
  for (const o of all) for (const [k, v] of Object.entries(o)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

/** Events still owed, summed over every registered consumer (read from Postgres). */
export async function owedEvents(c: Container): Promise<number> {
  return (await owedSummary(c.pool)).reduce((n, r) => n + r.events, 0);
}

export const idle = (counts: Record<string, number>) => !counts.waiting && !counts.active && !counts.delayed && !counts.prioritized;

/** Removes the test's queues (its own prefix only) and closes the container; safe if set-up failed half-way. */
export async function disposeTestContainer(c: Container | undefined): Promise<void> {
  const own = c ? c.routes.map((r) => c.consumerQueues.own(r.name)) : [];
  for (const q of [...Object.values(c?.queues ?? {}), ...own]) await q.obliterate({ force: true }).catch(() => {});
  await c?.close();
}
