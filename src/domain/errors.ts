export interface ValidationIssue {
  /** Dotted path from the root of what was validated, e.g. "payload.price.currency", or "type". */
  readonly field: string;
  readonly message: string;
}

/** Lines beyond this are summarised so a hostile payload cannot produce an unbounded error message. */
const MAX_MESSAGE_LINES = 20;

/**
 * Raised for any input the domain refuses. It carries structured issues (not just text) so the HTTP
 * layer can answer with the offending field and the event bus can re-prefix fields of batch items.
 */
export class EventValidationError extends Error {
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[]) {
    // An empty list would make `field` meaningless; treat it as a programming error upstream.
    const list = issues.length > 0 ? [...issues] : [{ field: '', message: 'invalid input' }];
    const lines = list.slice(0, MAX_MESSAGE_LINES).map((i) => `${i.field}: ${i.message}`);
    if (list.length > MAX_MESSAGE_LINES) lines.push(`… and ${list.length - MAX_MESSAGE_LINES} more issue(s)`);
    super(lines.join('\n'));
    this.name = 'EventValidationError';
    this.issues = list;
  }

  get field(): string {
    return this.issues[0]!.field;
  }
}
