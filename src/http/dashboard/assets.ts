import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  contentType: string;
  body: Buffer;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

// The page's own files sit in src/http/dashboard/public. A build (dist/) compiles only the .ts files,
// so from there they are found in the source tree the image also carries (Dockerfile copies src/).
function publicDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'public'), join(here, '../../../../src/http/dashboard/public')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) throw new Error(`dashboard files not found (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * Every file the dashboard may serve, by the name in its URL: a fixed list, so a request can never
 * name a path of its own. The chart library comes from node_modules (no CDN: the page works offline).
 */
function assetFiles(): Map<string, string> {
  const dir = publicDir();
  const require = createRequire(import.meta.url);
  const own = ['index.html', 'dashboard.css', 'api.js', 'dom.js', 'main.js', 'overview.js', 'charts.js', 'projections.js', 'failures.js', 'audit.js', 'tail.js'];
  return new Map([
    ...own.map((f) => [f, join(dir, f)] as const),
    ['uPlot.iife.min.js', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css')],
  ]);
}

/** Reads the files once per process (they are small and only change with a deploy). */
export function loadAssets(): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [name, file] of assetFiles()) {
    out.set(name, { contentType: TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream', body: readFileSync(file) });
  }
  return out;
}
