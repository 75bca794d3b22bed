import { runMigrations } from '../src/db/migrate.js';
import { loadConfig, redactUrl } from '../src/config.js';

const config = loadConfig();
const direction = process.argv.includes('--down') ? 'down' : 'up';
try {
  const applied = await runMigrations(config.DATABASE_URL, direction);
  console.log(applied.length ? `Applied ${direction}: ${applied.join(', ')}` : 'Database schema is up to date.');
} catch (error) {
  console.error(`Migration failed against ${redactUrl(config.DATABASE_URL)}: ${(error as Error).message}`);
  process.exit(1);
}
