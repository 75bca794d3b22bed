import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * One id per `npm test` run, in every test prefix (see testPrefix): at the end, the run deletes the
 * keys it created in the shared Redis (queues, jobs, caches of every prefix it used), and only those.
 * Processes the tests spawn inherit the id through the environment.
 */
export default function setup(): () => Promise<void> {
  const run = (process.env.HDT_TEST_RUN ??= randomBytes(4).toString('hex'));
  return async () => {
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `{hdt-test-${run}-*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) deleted += await redis.unlink(...keys);
      } while (cursor !== '0');
      if (deleted) console.log(`test run ${run}: deleted the ${deleted} Redis keys its tests created`);
    } catch (error) {
      console.warn(`test run ${run}: could not clean its Redis keys: ${(error as Error).message}`);
    } finally {
      redis.disconnect();
    }
  };
}
