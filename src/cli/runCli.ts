import type { Command } from 'commander';
import { createContainer, type Container } from '../app/container.js';
import { checkServices, PreflightError } from '../app/preflight.js';
import { ConfigError, loadConfig } from '../config.js';
import { pendingMessage, pendingMigrationsAt } from '../db/migrate.js';
import { EXIT } from '../exitCodes.js';
import { createLogger } from '../logger.js';

/** An operator-facing failure: printed as one message, exit code 2 (or the one given), no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Shared start-up for the npm run events:* commands: config, preflight, container, clean exit codes. */
export async function runCli(main: (c: Container) => Promise<number | void>, options: { register?: boolean } = {}): Promise<never> {
  let container: Container | undefined;
  let code = 0;
  try {
    const config = loadConfig();
    await checkServices(config);
    const pending = await pendingMigrationsAt(config.DATABASE_URL);
    if (pending.length) throw new CliError(pendingMessage(pending), EXIT.NOT_READY);
    container = await createContainer(config, createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL), { register: options.register ?? false });
    code = (await main(container)) ?? 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof PreflightError || error instanceof CliError) {
      console.error(error.message);
      code = error instanceof CliError ? error.exitCode : error instanceof PreflightError ? EXIT.NOT_READY : EXIT.CONFIG;
    } else {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      code = EXIT.FAILURE;
    }
  }
  await container?.close().catch(() => {});
  process.exit(code);
}

export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0]!);
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
  const widths = cols.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const fmt = (vals: string[]) => vals.map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!))).join('  ');
  return [fmt(cols), fmt(widths.map((w) => '─'.repeat(w))), ...rows.map((r) => fmt(cols.map((c) => cell(r[c]))))].join('\n');
}

export function parseNonNegativeInt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new CliError(`--${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
    return Number(v);
  };
}

/**
 * Makes a commander program report bad arguments as a CliError (exit 2, one line) and parses argv.
 * Returns false when it only printed --help.
 */
export function parseArgs(program: Command): boolean {
  program.exitOverride((err) => {
    throw new CliError(err.message, err.exitCode === 0 ? 0 : 2);
  });
  program.configureOutput({ writeErr: () => {} });
  try {
    program.parse();
    return true;
  } catch (e) {
    if (e instanceof CliError && e.exitCode === 0) {
      console.log(program.helpInformation());
      return false;
    }
    throw e;
  }
}
