/**
 * Exit codes of every entry point (npm start, web, worker, replay, the events:* CLIs, migrate, seed):
 * one table, in README's Troubleshooting, so a supervisor or a script can tell them apart.
 */
export const EXIT = {
  /** Done (or stopped by SIGTERM/SIGINT). */
  OK: 0,
  /** Unexpected failure: a bug or an error nobody anticipated (a stack trace is printed). */
  FAILURE: 1,
  /** A setting or a command-line argument is invalid: fix it and start again. */
  CONFIG: 2,
  /** The environment is not ready: PostgreSQL or Redis unreachable, login refused, database missing, migrations pending. */
  NOT_READY: 3,
  /** The HTTP port is already in use. */
  PORT_IN_USE: 4,
} as const;

/** An error that ends the process with its own exit code and a plain message (no stack trace). */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'ExitError';
  }
}
