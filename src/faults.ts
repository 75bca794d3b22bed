/**
 * Infrastructure faults against poison. An error that says "the database or Redis is not there right
 * now" (unreachable, restarting, failing over, a lost connection, a deadlock or serialization
 * conflict between our own transactions) is not the event's fault: the work waits and is tried
 * again, without using up an attempt and without a failure row. Everything else is the event's (or
 * the code's) fault and goes through retries, bisection and, at the end, `event_processing_failures`.
 */

// SQLSTATEs that pass by themselves: connection exceptions (class 08), admin/crash shutdown and
// "cannot connect now" (57P01-57P03), a read-only transaction during a failover (25006), our own
// transactions meeting each other (40001, 40P01).
// A statement whose completion is unknown (40003) and the server's resource limits (class 53: too many
// connections, out of memory, disk full) pass too.
const TRANSIENT_SQLSTATE = /^(08...|57P0[1-3]|25006|40001|40P01|40003|53...)$/;

// Socket-level failures of a connection to Postgres or Redis.
const TRANSIENT_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'ENETDOWN']);

// Drivers that report a lost connection only in words: pg ("Connection terminated", "timeout
// exceeded when trying to connect", "not queryable"), slonik's wrappers, ioredis ("Connection is
// closed", offline queue off, retries per request used up) and Redis Cluster redirections.
const TRANSIENT_MESSAGE =
  /connection terminated|terminating connection|timeout exceeded when trying to connect|client has encountered a connection error|not queryable|connection is closed|enableofflinequeue|reached the max retries per request|backend has been terminated|the database system is (starting up|shutting down|in recovery mode)|^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|MASTERDOWN) |failed to refresh slots cache|none of the cluster nodes/i;

const TRANSIENT_NAMES = new Set(['OrderNotSettledError', 'ConnectionError', 'BackendTerminatedError', 'BackendTerminatedUnexpectedlyError', 'MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/** The error and its `cause` chain (at most 8 deep), and the errors of an AggregateError at each level. */
export function* causes(error: unknown): Generator<{ name?: unknown; code?: unknown; message?: unknown; stack?: unknown }> {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e && typeof e === 'object'; depth++) {
    const x = e as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown; cause?: unknown; errors?: unknown };
    yield x;
    // AggregateError from a connect that tried IPv4 and IPv6.
    if (Array.isArray(x.errors)) for (const inner of x.errors) yield* causes(inner);
    e = x.cause;
  }
}

/** The first string code in the chain: a SQLSTATE or an errno. */
export function errorCode(error: unknown): string | undefined {
  for (const x of causes(error)) if (typeof x.code === 'string') return x.code;
  return undefined;
}

/** True if the error (or any error in its `cause` chain) is an infrastructure fault. */
export function isInfrastructureError(error: unknown): boolean {
  for (const x of causes(error)) {
    if (typeof x.code === 'string' && (TRANSIENT_SQLSTATE.test(x.code) || TRANSIENT_ERRNO.has(x.code))) return true;
    if (typeof x.name === 'string' && TRANSIENT_NAMES.has(x.name)) return true;
    if (typeof x.message === 'string' && TRANSIENT_MESSAGE.test(x.message)) return true;
  }
  return false;
}

/** Which service a fault is about, for logs and metrics: Redis errors come from ioredis, the rest is Postgres. */
export function faultKind(error: unknown): 'postgres' | 'redis' {
  for (const x of causes(error)) {
    if (typeof x.name === 'string' && /MaxRetriesPerRequest|Cluster|ReplyError/.test(x.name)) return 'redis';
    if (typeof x.message === 'string' && /connection is closed|enableofflinequeue|max retries per request|^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|MASTERDOWN) /i.test(x.message)) return 'redis';
    if (typeof x.stack === 'string' && /ioredis|bullmq/.test(x.stack)) return 'redis';
  }
  return 'postgres';
}

/** Capped exponential backoff with jitter (full jitter over the upper half), in ms. */
export function backoffMs(attempt: number, baseMs = 500, capMs = 15_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt, 20)));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
