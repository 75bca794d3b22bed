import { fileURLToPath } from 'node:url';

export type Optional<T> = { available: true; value: T } | { available: false; path: string };

/**
 * Imports one export of a module that may not exist yet (parts of the platform land in stages).
 * Only the module itself being absent counts as "not available"; a module that exists but fails to
 * load (a syntax error, a missing import of its own) is a real error and is thrown.
 */
export async function importOptional<T>(url: URL, exportName: string): Promise<Optional<T>> {
  const path = fileURLToPath(url);
  try {
    const mod = (await import(url.href)) as Record<string, unknown>;
    const value = mod[exportName];
    if (value === undefined) throw new Error(`${path} does not export ${exportName}`);
    return { available: true, value: value as T };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.includes(`'${path}'`)) return { available: false, path };
    throw error;
  }
}
