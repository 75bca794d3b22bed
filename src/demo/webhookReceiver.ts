import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoReceiverOptions {
  /** When the first outage starts, after the receiver starts. */
  firstOutageAfterMs?: number;
  /** How long each outage lasts: longer than a job's retries (about 15 s by default), so some alerts fail for good. */
  outageMs?: number;
  /** Time from the start of one outage to the next. */
  periodMs?: number;
  now?: () => number;
}

export interface DemoReceiver {
  url: string;
  /** Answers 503 now? */
  down(): boolean;
  counts: { accepted: number; refused: number };
  close(): Promise<void>;
}

/**
 * The demo's alert webhook receiver, on localhost: it accepts alerts, but goes down now and then
 * (503 for `outageMs` every `periodMs`), so the demo shows retries, failures that exhaust their
 * attempts, and the failures flow (list, retry once it is back, resolve) on a fresh machine.
 */
export async function startDemoReceiver(options: DemoReceiverOptions = {}): Promise<DemoReceiver> {
  const now = options.now ?? Date.now;
  const first = options.firstOutageAfterMs ?? 60_000;
  const outage = options.outageMs ?? 30_000;
  const period = options.periodMs ?? 5 * 60_000;
  const started = now();
  const down = () => {
    const t = now() - started - first;
    return t >= 0 && t % period < outage;
  };
  const counts = { accepted: 0, refused: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const refuse = down();
      if (refuse) counts.refused++;
      else counts.accepted++;
      res.writeHead(refuse ? 503 : 200, { 'content-type': 'application/json' }).end(refuse ? '{"error":"demo receiver is down for a while"}' : '{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    down,
    counts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
