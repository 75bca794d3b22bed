/** What the fan-out needs to know of a stored event: its id, stream, type and outbox key. */
export interface OutboxEntry {
  position: number;
  eventId: string;
  streamId: string;
  eventType: string;
}

/**
 * Hands committed events to the consumers: records in Postgres what every registered consumer owes,
 * then enqueues jobs. Implemented by the consumer pipeline (`src/consumers/JobPublisher.ts`).
 */
export interface Publisher {
  /** Throws if the events could not be handed over; the outbox rows (or owed rows) stay for the relay. */
  publish(entries: readonly OutboxEntry[], options?: { done?: readonly string[] }): Promise<void>;
  /** NOTIFY the relays, so what this process could not enqueue is swept now, not at the next poll. */
  wakeRelays(): Promise<void>;
}
