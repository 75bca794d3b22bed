/**
 * One live catch-up per projection at a time inside this process. Two jobs of one worker catching up
 * the same projection over overlapping streams make the second skip every stream the first holds
 * (SKIP LOCKED), then come back for them in a follow-up job that reads them again: measured, with a
 * concurrency of 2 on the one-read-model workload, 2.7× the Redis commands and a quarter more worker
 * CPU than one at a time. Waiting here for a job of the same process is not a database lock wait: no
 * connection or transaction is held meanwhile, and the wait ends when that job's transaction does.
 * Other processes still meet at the advisory locks and skip each other.
 */
export class ProcessGate {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` holding every key (taken in sorted order, so two callers never wait on each other in a cycle). */
  async with<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const key of sorted) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases) release();
    }
  }

  private async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      // The last holder leaves no entry behind.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }
}
