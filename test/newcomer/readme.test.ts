// README.md is checked against the code it describes, so it cannot silently go stale: the
// configuration table against src/config.ts, the script and process tables against package.json and
// the Procfile, and every SQL block is run against a migrated database.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../src/config.js';
import { createTestDb, type TestDb } from '../support/db.js';
import { ROOT } from '../support/processes.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const procfile = readFileSync(join(ROOT, 'Procfile'), 'utf8').split('\n').filter((l) => l.includes(':'));

/** Rows of the markdown table that follows `heading`, as arrays of cell texts without backticks. */
function table(heading: string): string[][] {
  const section = README.slice(README.indexOf(heading));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim().replace(/`/g, '')));
  }
  return rows;
}

function blocks(lang: string): string[] {
  return [...README.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

describe('README.md', () => {
  it('has the sections other parts of the project fill in', () => {
    for (const h of ['## HTTP API', '## Replay and monitoring CLI', '## Benchmarks', '## Capacity model', '## Configuration', '## Operations', '## Troubleshooting']) {
      expect(README).toMatch(new RegExp(`^${h}$`, 'm'));
    }
  });

  it('states the two commands', () => {
    expect(blocks('bash')).toContain('npm install && npm start\n');
    expect(blocks('bash')).toContain('npm test\n');
  });

  it('documents every setting of src/config.ts, with its real default', () => {
    const rows = table('## Configuration');
    const documented = rows.map((r) => r[0]);
    expect(documented.sort()).toEqual(Object.keys(ConfigSchema.shape).sort());
    const defaults = loadConfig({}) as Record<string, unknown>;
    for (const [name, def] of rows) {
      const actual = defaults[name!];
      const shown = actual === undefined ? undefined : Array.isArray(actual) ? actual.join(',') : String(actual);
      if (shown === undefined) expect(def, name).toMatch(/^\*\(.+\)\*$/);
      else expect(def, name).toBe(shown);
    }
  });

  it('lists every npm script, and names no script that does not exist', () => {
    const listed = table('## npm scripts').map((r) => r[0]!.replace(/^npm (run )?/, ''));
    expect(listed.sort()).toEqual(Object.keys(scripts).sort());
    for (const m of README.matchAll(/npm run ([\w:.-]+)/g)) expect(scripts[m[1]!], `npm run ${m[1]}`).toBeDefined();
  });

  it('lists the processes exactly as the Procfile runs them', () => {
    const listed = table('## Processes and scaling').map((r) => `${r[0]}: ${r[1]}`);
    expect(listed.sort()).toEqual(procfile.map((l) => l.trim()).sort());
  });

  describe('SQL blocks', () => {
    let db: TestDb;
    let client: pg.Client;
    beforeAll(async () => {
      db = await createTestDb('readme');
      client = new pg.Client({ connectionString: db.url });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
      await db?.drop();
    });

    it('every one runs as written on a migrated database', async () => {
      const sqlBlocks = blocks('sql');
      expect(sqlBlocks.length).toBeGreaterThanOrEqual(3);
      for (const text of sqlBlocks) {
        // A migration is run up, then down, the way node-pg-migrate would.
        const [up, down] = text.split('-- Down Migration');
        await client.query(up!);
        if (down) await client.query(down);
      }
    });
  });
});
