import type { EventEmitter } from 'node:events';
import { PostgresConnection, PostgresQueueBackend, type BackendFactory, type PostgresConnectionOptions } from 'bullmq';

/**
 * BullMQ's Postgres backend with one connection per process instead of one per Queue and Worker.
 * `createPostgresBackend` gives every Queue and Worker its own pool and LISTEN connection: a worker
 * process runs a worker per shared queue and per consumer (eleven here) plus as many producer queues,
 * which took 60-80 connections per process and exhausted a 100-connection server in the tests. Here
 * every backend of the process shares one pool and one LISTEN connection (BullMQ's own `forQueue`
 * siblings share a connection the same way: jobs wake workers through one channel, filtered by queue
 * name). The store closes the connection once every Queue and Worker is closed.
 */
export interface SharedPostgresBackend {
  factory: BackendFactory<any, any>;
  connection: PostgresConnection;
  close(): Promise<void>;
}

type Waits = { listening: boolean; listeningEvents: boolean; cancelWait?: () => void; cancelEventWait?: () => void };

export function sharedPostgresBackend(options: PostgresConnectionOptions, onError: (err: Error) => void): SharedPostgresBackend {
  let connection: PostgresConnection | null = null;
  const backends = new Set<Waits>();
  const open = (): PostgresConnection => {
    if (connection) return connection;
    const c = new PostgresConnection(options);
    c.on('error', onError);
    // The LISTEN connection was lost and rebuilt: every backend re-subscribes on the new one and its
    // wait (parked on the dead one) ends now, as an owning backend does for itself.
    c.on('listenerinvalidated', () => {
      for (const b of backends) {
        b.listening = false;
        b.listeningEvents = false;
        b.cancelWait?.();
        b.cancelEventWait?.();
      }
    });
    // Every backend of the process waits on this one client: one 'notification' listener each (more
    // than EventEmitter's default 10), and their LISTENs serialised (pg deprecates overlapping queries).
    const getListenClient = c.getListenClient.bind(c);
    const prepared = new WeakSet<object>();
    c.getListenClient = async () => {
      const client = await getListenClient();
      if (!prepared.has(client)) {
        prepared.add(client);
        (client as unknown as EventEmitter).setMaxListeners(0);
        const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
        let chain: Promise<unknown> = Promise.resolve();
        (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
          const next = chain.then(() => query(...args));
          chain = next.catch(() => {});
          return next;
        };
      }
      return client;
    };
    return (connection = c);
  };
  const factory: BackendFactory<PostgresQueueBackend, PostgresConnectionOptions> = (name, opts) => {
    const backend = new PostgresQueueBackend(open(), name, opts, false);
    backends.add(backend as unknown as Waits);
    return backend;
  };
  return {
    factory: factory as BackendFactory<any, any>,
    get connection() {
      return open();
    },
    async close() {
      backends.clear();
      const c = connection;
      connection = null;
      await c?.close();
    },
  };
}
