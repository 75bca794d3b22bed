import { createContainer, type Container, type ContainerOptions } from '../../src/app/container.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

/** A container wired like a real process, against a test database and a test-only queue prefix. */
export async function testContainer(env: Record<string, string>, options: ContainerOptions = {}): Promise<Container> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env });
  return createContainer(config, createLogger(config.LOG_LEVEL), options);
}

export async function queueCounts(c: Container): Promise<Record<string, number>> {
  const [h, p] = await Promise.all([
    c.queues.handlers.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'),
    c.queues.projections.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'),
  ]);
  const sum: Record<string, number> = {};
  for (const o of [h, p]) for (const [k, v] of Object.entries(o)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

export const idle = (counts: Record<string, number>) => !counts.waiting && !counts.active && !counts.delayed && !counts.prioritized;

/** Removes the test's queues (its own prefix only) and closes the container; safe if set-up failed half-way. */
export async function disposeTestContainer(c: Container | undefined): Promise<void> {
  for (const q of Object.values(c?.queues ?? {})) await q.obliterate({ force: true }).catch(() => {});
  await c?.close();
}
