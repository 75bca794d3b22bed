import type { Logger } from 'pino';
import { createContainer, type Container } from '../app/container.js';
import { startWorkerHost } from '../app/workerHost.js';
import type { Config } from '../config.js';
import { importOptional } from './optionalModule.js';
import { startDemoScraper, type DemoScraper } from './scraper.js';
import { startDemoReceiver, type DemoReceiver } from './webhookReceiver.js';
import { describeWebServer, type StartedWebServer } from './webServer.js';

type StartWebServer = (c: Container) => unknown;
type StartReplayWorker = (c: Container) => { close(graceMs?: number): Promise<unknown> };

export interface AllInOne {
  container: Container;
  web: StartedWebServer | null;
  replay: boolean;
  demo: DemoScraper | null;
  /** The demo's local alert webhook receiver (goes down now and then), when no ALERT_WEBHOOK_URL is set. */
  receiver: DemoReceiver | null;
  /** Stops producing, stops taking work, drains within the grace period, closes connections. */
  close(): Promise<{ timedOut: boolean }>;
}

/**
 * Every process of the Procfile in one: handler and projection workers with the relay, the web
 * server, the replay worker, plus the demo scraper. The web and replay modules are imported lazily
 * so this keeps working in a checkout where they are not there yet.
 */
export async function startAllInOne(config: Config, logger: Logger): Promise<AllInOne> {
  // With the demo on and no receiver of its own, alerts go to a local one that fails now and then.
  const receiver = config.DEMO === 'on' && config.DEMO_RATE > 0 && !config.ALERT_WEBHOOK_URL ? await startDemoReceiver() : null;
  if (receiver) config = { ...config, ALERT_WEBHOOK_URL: receiver.url };
  const container = await createContainer(config, logger).catch(async (error: unknown) => {
    await receiver?.close();
    throw error;
  });
  // Stopped in this order: producers first, then consumers (drained in parallel), then connections.
  let demo: DemoScraper | null = null;
  let web: StartedWebServer | null = null;
  const drains: (() => Promise<unknown>)[] = [];
  let timedOut = false;
  const closeAll = async () => {
    const quietly = (p: Promise<unknown>) => p.catch((e: Error) => logger.warn({ err: e.message }, 'error while closing'));
    if (demo) await quietly(demo.stop());
    if (web) await quietly(web.close());
    await Promise.all(drains.map((d) => quietly(d())));
    await quietly(container.close());
    if (receiver) await quietly(receiver.close());
  };
  try {
    const host = await startWorkerHost(container, ['handlers', 'projections', 'relay']);
    drains.push(async () => ({ timedOut } = await host.close(config.SHUTDOWN_GRACE_MS)));

    const replayModule = await importOptional<StartReplayWorker>(new URL('../app/replayWorker.js', import.meta.url), 'startReplayWorker');
    if (replayModule.available) {
      const replay = replayModule.value(container);
      drains.push(() => replay.close(config.SHUTDOWN_GRACE_MS));
    } else {
      logger.info({ missing: replayModule.path }, 'replay worker not available yet; continuing without it');
    }

    const webModule = await importOptional<StartWebServer>(new URL('../http/server.js', import.meta.url), 'startWebServer');
    if (webModule.available) {
      web = describeWebServer(await webModule.value(container), { host: config.HOST, port: config.PORT });
    } else {
      logger.info({ missing: webModule.path }, 'HTTP API not available yet; continuing without it');
    }

    if (config.DEMO === 'on' && config.DEMO_RATE > 0) demo = startDemoScraper(container.bus, { rate: config.DEMO_RATE, logger });

    return {
      container,
      web,
      replay: replayModule.available,
      demo,
      receiver,
      async close() {
        await closeAll();
        return { timedOut };
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
