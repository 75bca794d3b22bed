import { afterAll, describe, expect, it } from 'vitest';
import { startDemoReceiver, type DemoReceiver } from '../../src/demo/webhookReceiver.js';

// The trap: the demo never produced a failure, so the failures flow could not be seen on a fresh
// machine. Its local receiver goes down on a schedule, and comes back.
let r: DemoReceiver | undefined;
afterAll(async () => {
  await r?.close();
});

describe('the demo webhook receiver', () => {
  it('demo-receiver-fails-now-and-then: up, then 503 during each outage window, then up again', async () => {
    let t = 1_000_000;
    r = await startDemoReceiver({ firstOutageAfterMs: 60_000, outageMs: 30_000, periodMs: 300_000, now: () => t });
    const post = async () => (await fetch(r!.url, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status;
    expect(await post()).toBe(200);
    t += 61_000;
    expect(await post()).toBe(503);
    t += 30_000;
    expect(await post()).toBe(200);
    t += 300_000 - 30_000;
    expect(await post()).toBe(503);
    expect(r.counts).toEqual({ accepted: 2, refused: 2 });
  });
});
