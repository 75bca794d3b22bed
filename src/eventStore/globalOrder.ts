import { sql } from 'slonik';
import type { GlobalCheckpoint } from './types.js';

/**
 * The gap-free global order. A sequence value becomes visible at commit, not at insert, so a reader of
 * `global_position > last` skips transactions that commit late. Rows are read only below the snapshot's
 * xmin (every transaction that could still commit there has finished), ordered and paged by the
 * (transaction_id, global_position) pair.
 *
 * The two switches exist only so the tests can prove they catch the classic mistakes; production code
 * always uses the defaults.
 */
export interface GlobalOrderOptions {
  xminFilter?: boolean;
  checkpoint?: 'pair' | 'position';
}

export function afterCheckpoint(after: GlobalCheckpoint, options: GlobalOrderOptions = {}) {
  const { xminFilter = true, checkpoint = 'pair' } = options;
  const cursor =
    checkpoint === 'pair'
      ? sql.fragment`(transaction_id, global_position) > (${after.transactionId}::xid8, ${after.position}::bigint)`
      : sql.fragment`global_position > ${after.position}::bigint`;
  return xminFilter ? sql.fragment`${cursor} AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())` : cursor;
}

export const GLOBAL_ORDER = sql.fragment`ORDER BY transaction_id, global_position`;

export function compareCheckpoints(a: GlobalCheckpoint, b: GlobalCheckpoint): number {
  const ta = BigInt(a.transactionId);
  const tb = BigInt(b.transactionId);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.position - b.position;
}
