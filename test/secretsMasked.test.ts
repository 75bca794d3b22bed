import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPostgres, checkRedis } from '../src/app/preflight.js';
import { ConfigError, loadConfig, redactUrl } from '../src/config.js';
import { sampleEvent } from '../src/domain/index.js';
import { AlertNotificationHandler } from '../src/handlers/alertNotificationHandler.js';
import { createLogger } from '../src/logger.js';
import { LogCapture } from './http/support.js';
import { ADMIN_URL } from './support/db.js';
import { spawnTs, stopAll, type Spawned } from './support/processes.js';

const started: Spawned[] = [];
afterAll(() => stopAll(started));

const SECRETS = ['s3cretpw', 'pg-pw-9', 'p@ss w0rd', 'hook-pw-7', 'tok-abc-123', 'sig-xyz-456'];
const expectMasked = (text: string) => {
  for (const s of SECRETS) expect(text, `"${s}" leaked`).not.toContain(s);
  expect(text).not.toContain(encodeURIComponent('p@ss w0rd'));
};

describe('secrets-masked', () => {
  it('redactUrl masks every credential form and keeps the rest readable', () => {
    const cases: [string, string][] = [
      ['redis://:s3cretpw@127.0.0.1:1', 'redis://:***@127.0.0.1:1'],
      ['redis://default:s3cretpw@127.0.0.1:6379/0', 'redis://default:***@127.0.0.1:6379/0'],
      ['postgres://app:pg-pw-9@db:5432/x', 'postgres://app:***@db:5432/x'],
      [`postgresql://app:${encodeURIComponent('p@ss w0rd')}@db/x`, 'postgresql://app:***@db/x'],
      ['postgres://app:p@ss/w0rd@db/x', 'postgres://app:***@db/x'],
      ['postgres://postgres@127.0.0.1:5432/hdtickets', 'postgres://postgres@127.0.0.1:5432/hdtickets'],
      ['https://bot:hook-pw-7@hooks.example/a?token=tok-abc-123&x=1&signature=sig-xyz-456', 'https://bot:***@hooks.example/a?token=***&x=1&signature=***'],
      ['https://tok-abc-123@hooks.example/a', 'https://***@hooks.example/a'],
      ['https://hooks.example/a?api_key=tok-abc-123', 'https://hooks.example/a?api_key=***'],
    ];
    for (const [url, shown] of cases) expect(redactUrl(url), url).toBe(shown);
  });

  it('loadConfig errors echo bad URLs masked', () => {
    let error: unknown;
    try {
      loadConfig({ DATABASE_URL: 'mysql://app:pg-pw-9@db/x', REDIS_URL: 'http://:s3cretpw@h:6379', ALERT_WEBHOOK_URL: 'ftp://bot:hook-pw-7@h/a?token=tok-abc-123' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const msg = (error as Error).message;
    for (const key of ['DATABASE_URL', 'REDIS_URL', 'ALERT_WEBHOOK_URL']) expect(msg).toContain(key);
    expect(msg).toContain('mysql://app:***@db/x');
    expectMasked(msg);
  });

  it('preflight messages for unreachable Redis and Postgres mask the password', async () => {
    const redis = await checkRedis('redis://:s3cretpw@127.0.0.1:1', 2000).then(() => null, (e: Error) => e);
    expect(redis?.message).toContain('Cannot reach Redis at redis://:***@127.0.0.1:1');
    expectMasked(redis!.message);
    const pg = await checkPostgres(`postgres://app:${encodeURIComponent('p@ss w0rd')}@127.0.0.1:1/x`, 2000).then(() => null, (e: Error) => e);
    expect(pg?.message).toContain('Cannot reach PostgreSQL at postgres://app:***@127.0.0.1:1/x');
    expectMasked(pg!.message);
  });

  it('npm start with a password in REDIS_URL prints it masked', async () => {
    const p = spawnTs('scripts/start.ts', { LOG_LEVEL: 'info', DATABASE_URL: ADMIN_URL, REDIS_URL: 'redis://:s3cretpw@127.0.0.1:1', EMBEDDED_SERVICES: 'off' });
    started.push(p);
    const { code } = await p.exited;
    expect(code).not.toBe(0);
    expect(p.output()).toContain('redis://:***@127.0.0.1:1');
    expectMasked(p.output());
  });

  it('a logged config shows URLs masked', () => {
    const logs = new LogCapture();
    const config = loadConfig({ DATABASE_URL: 'postgres://app:pg-pw-9@db/x', REDIS_URL: 'redis://:s3cretpw@h:6379', ALERT_WEBHOOK_URL: 'https://bot:hook-pw-7@h/a?token=tok-abc-123' });
    const logger = createLogger('info', logs);
    logger.info({ config }, 'config');
    logger.info({ REDIS_URL: config.REDIS_URL }, 'flat');
    logger.flush();
    expect(logs.text).toContain('redis://:***@h:6379');
    expectMasked(logs.text);
  });

  it('an unreachable alert webhook with credentials fails with a masked message', async () => {
    const e = { id: randomUUID(), occurredAt: new Date().toISOString(), ...sampleEvent('AlertTriggered') };
    const ctx = {
      notify: () => {},
      countForPlatform: () => {},
      settings: { webhookUrl: 'http://bot:hook-pw-7@127.0.0.1:1/a?token=tok-abc-123', webhookTimeoutMs: 2000 },
    };
    const error = await AlertNotificationHandler.handle(e as never, ctx as never).then(() => null, (x: Error) => x);
    expect(error?.message).toContain('alert webhook http://bot:***@127.0.0.1:1/a?token=***');
    expectMasked(`${error?.message} ${error?.stack}`);
  });
});
