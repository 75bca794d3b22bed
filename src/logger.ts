import { pino, type Logger } from 'pino';

export type { Logger };

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
          'req.headers.authorization',
          'headers.authorization',
          'authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
