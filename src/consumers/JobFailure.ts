/** A job attempt's error: our own message (what failed, where) over the stack of the underlying error. */
export class JobFailure extends Error {
  constructor(message: string, stack?: string) {
    super(message);
    if (stack) this.stack = `${message}\n${stack.split('\n').slice(1).join('\n')}`;
  }
}

/** The message a poisoned projection stream fails with, in batch jobs and in a projection's own jobs alike. */
export function poisonFailure(projection: string, first: { eventId: string; streamId: string; version: number; error: Error }): JobFailure {
  // No event id: the stream's catch-up failed as a whole (isolated by bisection), not at one event.
  const what = first.eventId ? `apply event ${first.eventId} (stream ${first.streamId} v${first.version})` : `catch up stream ${first.streamId}`;
  return new JobFailure(`${projection} could not ${what}: ${first.error.message}`, first.error.stack);
}
