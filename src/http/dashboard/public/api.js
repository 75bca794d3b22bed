// The dashboard's one way to the JSON API. Credentials are not handled here: the browser re-sends the
// Basic credentials it used for /dashboard (same origin, same protection space).

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const json = await res.json().catch(() => null);
  if (!res.ok || !json || json.success !== true) throw new ApiError(json?.error?.message ?? `HTTP ${res.status} from ${path}`, res.status);
  return json.data;
}

/** Query string from an object, leaving out empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

const statusEl = () => document.getElementById('status');

/** One line in the header: when data was last loaded, or what went wrong. */
export function reportStatus(error) {
  const el = statusEl();
  if (!el) return;
  el.className = error ? 'error' : '';
  el.textContent = error ? `error: ${error.message}` : `updated ${new Date().toLocaleTimeString()}`;
}
