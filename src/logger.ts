import { pino, type Logger } from 'pino';
import { redactUrl } from './config.js';

export type { Logger };

const URL_KEYS = ['DATABASE_URL', 'REDIS_URL', 'ALERT_WEBHOOK_URL'];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      // Belt and braces: secrets must never reach a log line even if someone logs a whole config or request.
      redact: {
        paths: [
          'API_TOKEN',
          'ALERT_WEBHOOK_SECRET',
          'config.API_TOKEN',
          'config.ALERT_WEBHOOK_SECRET',
          'INGEST_TOKENS',
          'config.INGEST_TOKENS',
          'req.headers.authorization',
          'headers.authorization',
          'authorization',
          ...URL_KEYS,
          ...URL_KEYS.map((k) => `config.${k}`),
        ],
        // Connection and webhook URLs stay readable with their credentials masked; the rest is hidden.
        censor: (value: unknown, path: string[]) => (URL_KEYS.includes(path[path.length - 1]!) && typeof value === 'string' ? redactUrl(value) : '[redacted]'),
      },
    },
    destination,
  );
}

/**
 * What a log line may say about an error that can carry request input: its classes, its codes
 * (SQLSTATE, errno) and its stack frames, never a message. Driver messages and their details echo
 * values (`invalid input syntax for type uuid: "…"`, `Key (id)=(…)`, a jsonb error's `where` quoting
 * the text), and a request body must never reach a log line.
 */
export function errorSummary(error: unknown): { type: string; codes?: string[]; frames?: string[] } {
  const types: string[] = [];
  const codes: string[] = [];
  let frames: string[] | undefined;
  let e: unknown = error;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const x = e as { constructor?: { name?: string }; name?: unknown; code?: unknown; stack?: unknown; cause?: unknown };
    types.push(typeof x.name === 'string' && x.name !== 'Error' ? x.name : x.constructor?.name ?? 'Error');
    if ((typeof x.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(x.code)) || typeof x.code === 'number') codes.push(String(x.code));
    // Frames only: the stack's first line repeats the message.
    frames ??= typeof x.stack === 'string' ? x.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 12).map((l) => l.trim()) : undefined;
    e = x.cause;
  }
  if (types.length === 0) types.push(typeof error);
  return { type: types.join(' <- '), ...(codes.length ? { codes } : {}), ...(frames?.length ? { frames } : {}) };
}
