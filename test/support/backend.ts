/**
 * The queue backend the tests run on: `QUEUE_BACKEND` of the test process (vitest's `postgres` project
 * sets it for the queue-level files that run on both backends; see vitest.config.ts), else redis.
 * testContainer and every spawned process (which inherit the environment) use it.
 */
export const TEST_QUEUE_BACKEND: 'redis' | 'postgres' = process.env.QUEUE_BACKEND === 'postgres' ? 'postgres' : 'redis';

export const onPostgresQueues = TEST_QUEUE_BACKEND === 'postgres';

/**
 * The PostgreSQL backend's "Redis restarted empty": every job and deduplication key deleted from the
 * bullmq schema (waiting, delayed, active and finished alike), as an operator emptying the queues or a
 * restore of an older backup would. The owed rows in our own tables stay: they are the record.
 */
/** Returns how many unfinished jobs (waiting, delayed, active) were lost. */
export async function emptyPostgresQueueStore(databaseUrl: string): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('DELETE FROM bullmq.dedup');
    // Only unfinished jobs count as lost: finished ones were owed nothing.
    const deleted = await client.query<{ state: string }>('DELETE FROM bullmq.job RETURNING state::text AS state');
    return deleted.rows.filter((r) => r.state !== 'completed' && r.state !== 'failed').length;
  } finally {
    await client.end();
  }
}
