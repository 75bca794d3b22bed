import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startHarness, type Harness } from './support.js';

// What a newcomer met: a resolve without a body answered "Required" for an empty field name, a
// rebuild with no replay process stayed `waiting` without a word, and settings errors read like
// library internals ("Expected number, received nan").
let h: Harness;
beforeAll(async () => {
  h = await startHarness('operator_hints');
});
afterAll(async () => {
  await h?.close();
});

describe('answers an operator can act on', () => {
  it('resolve-without-body-names-the-body: 400 naming the body and the note it needs', async () => {
    const r = await h.api('POST', '/api/events/failures/1/resolve');
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe('body');
    expect(r.body.error.message).toMatch(/body is required.*note/);
  });

  it('rebuild-without-replay-worker-says-so: a rebuild enqueued while no replay process runs answers 202 with a warning saying what to start', async () => {
    const r = await h.api('POST', '/api/events/projections/TicketReadModelProjection/rebuild');
    expect(r.status).toBe(202);
    expect(r.body.data.warning).toMatch(/no replay worker is running.*npm run replay/);
  });

  it('config-errors-in-operator-words: numbers, enums and URLs say what the value must be', () => {
    const message = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        if (e instanceof ConfigError) return e.message;
        throw e;
      }
      return '';
    };
    expect(message({ DEMO_RATE: 'fast' })).toContain('DEMO_RATE: must be a number (got "fast")');
    expect(message({ PORT: 'x' })).toMatch(/PORT: must be a (whole )?number/);
    expect(message({ LOG_LEVEL: 'loud' })).toContain('LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent');
    expect(message({ JOB_ATTEMPTS: '0' })).toContain('JOB_ATTEMPTS: must be at least 1');
    for (const m of [message({ DEMO_RATE: 'fast' }), message({ PORT: 'x' })]) expect(m).not.toMatch(/Expected|received|nan/);
  });
});
