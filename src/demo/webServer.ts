import type { AddressInfo } from 'node:net';

export interface StartedWebServer {
  /** Base URL, e.g. http://127.0.0.1:3000 */
  url: string;
  close(): Promise<void>;
}

type Closable = { close?: () => unknown };
type WithServer = { server?: { address?: () => AddressInfo | string | null } };

/**
 * Normalises whatever `startWebServer` returns (its own handle, or a fastify instance) into a URL and
 * a close(), so the all-in-one start does not depend on the web module's exact return shape.
 */
export function describeWebServer(started: unknown, fallback: { host: string; port: number }): StartedWebServer {
  const s = (started ?? {}) as Closable & WithServer & { url?: unknown; address?: unknown; port?: unknown; app?: Closable & WithServer };
  const fromAddress = (a: AddressInfo | string | null | undefined) =>
    a && typeof a === 'object' ? `http://${hostFor(a.address, fallback.host)}:${a.port}` : undefined;
  const url =
    (typeof s.url === 'string' && s.url) ||
    (typeof s.address === 'string' && /^https?:\/\//.test(s.address) && s.address) ||
    (typeof s.address === 'object' && s.address !== null && 'port' in s.address && fromAddress(s.address as AddressInfo)) ||
    fromAddress(s.server?.address?.()) ||
    fromAddress(s.app?.server?.address?.()) ||
    (typeof s.port === 'number' && `http://${fallback.host}:${s.port}`) ||
    `http://${fallback.host}:${fallback.port}`;
  const closer = typeof s.close === 'function' ? s : typeof s.app?.close === 'function' ? s.app : null;
  return {
    url: url.replace(/\/$/, ''),
    close: async () => {
      await closer?.close?.();
    },
  };
}

// A wildcard bind is not a URL anyone can open; show the loopback address instead.
function hostFor(address: string, fallback: string): string {
  if (address === '0.0.0.0' || address === '::' || !address) return fallback === '0.0.0.0' || fallback === '::' ? '127.0.0.1' : fallback;
  return address.includes(':') ? `[${address}]` : address;
}
