import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../support/processes.js';

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
const buildConfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string; rootDir: string }; include: string[] };

const procfile = Object.fromEntries(
  read('Procfile')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
);

/** `node dist/workers/web.js` → `workers/web.ts`, following tsconfig.build.json's rootDir/outDir. */
function sourceOf(distPath: string): string {
  const out = buildConfig.compilerOptions.outDir.replace(/^\.\//, '').replace(/\/$/, '');
  expect(distPath.startsWith(`${out}/`), `${distPath} is not under ${out}/`).toBe(true);
  return distPath.slice(out.length + 1).replace(/\.js$/, '.ts');
}

// Node flags (e.g. --max-semi-space-size) may come before the script.
const nodeTarget = (command: string) => /^node (?:--[\w-]+(?:=\S+)? )*(\S+\.js)$/.exec(command)?.[1];

describe('Procfile', () => {
  it('has web, worker, replay and a release step that migrates; npm start runs scripts/start.ts', () => {
    expect(scripts.start).toMatch(/^tsx (--[\w-]+(=\S+)? )*scripts\/start\.ts$/);
    expect(Object.keys(procfile).sort()).toEqual(['release', 'replay', 'web', 'worker']);
    expect(procfile.release).toBe('npm run migrate');
    expect(scripts.migrate).toBeDefined();
  });

  for (const [name, command] of Object.entries(procfile).filter(([n]) => n !== 'release')) {
    const target = nodeTarget(command);
    const source = target ? sourceOf(target) : '';
    it(`${name}: runs compiled JavaScript built from an existing source (${source})`, () => {
      expect(target, `${name} should run compiled JS (node dist/...js), got: ${command}`).toBeDefined();
      expect(existsSync(join(ROOT, source)), `${source} missing`).toBe(true);
      expect(buildConfig.include.some((dir) => source.startsWith(`${dir}/`)), `${source} is outside tsconfig.build.json's include`).toBe(true);
    });
  }
});

describe('docker-compose.yml', () => {
  // Compose supports YAML merge keys (`<<: *app`); plain YAML 1.2 needs them switched on.
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, any> };
  const services = compose.services;

  it('has the infrastructure and every process of the Procfile (optional services only under a profile)', () => {
    const always = Object.keys(services).filter((s) => !services[s].profiles);
    expect(always.sort()).toEqual(['migrate', 'postgres', 'redis', 'replay', 'web', 'worker']);
    expect(Object.keys(services).filter((s) => services[s].profiles).sort()).toEqual(['prometheus']);
  });

  it('the `metrics` profile adds Prometheus, scraping web, every worker replica and replay where they serve /metrics', () => {
    const prom = services.prometheus;
    expect(prom.profiles).toEqual(['metrics']);
    expect(prom.image).toMatch(/^prom\/prometheus:v\d/);
    const mount = (prom.volumes as string[]).find((v) => v.endsWith(':/etc/prometheus/prometheus.yml:ro'));
    expect(mount).toBeDefined();
    const scrape = parse(read(mount!.split(':')[0]!.replace(/^\.\//, ''))) as { scrape_configs: { job_name: string; static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[]; authorization?: { credentials_file: string } }[] };
    const jobs = Object.fromEntries(scrape.scrape_configs.map((j) => [j.job_name, j]));
    expect(Object.keys(jobs).sort()).toEqual(['replay', 'web', 'worker']);
    expect(jobs.web!.static_configs![0]!.targets).toEqual([`web:${services.web.environment.PORT}`]);
    // Every replica of the worker: DNS gives one address per container.
    expect(jobs.worker!.dns_sd_configs![0]).toMatchObject({ names: ['worker'], port: Number(services.worker.environment.METRICS_PORT) });
    expect(jobs.replay!.static_configs![0]!.targets).toEqual([`replay:${services.replay.environment.METRICS_PORT}`]);
    for (const s of ['worker', 'replay']) {
      expect(Number(services[s].environment.METRICS_PORT), s).toBeGreaterThan(0);
      expect(services[s].environment.HOST, `${s} must listen beyond loopback for Prometheus`).toBe('0.0.0.0');
    }
    // The token reaches Prometheus through the file its entrypoint writes from API_TOKEN.
    for (const j of Object.values(jobs)) expect(prom.entrypoint.join(' ')).toContain(`> ${j.authorization!.credentials_file}`);
  });

  it('runs Postgres 16 and Redis 7 with health checks, Redis with AOF and noeviction', () => {
    expect(services.postgres.image).toMatch(/^postgres:16/);
    expect(services.postgres.healthcheck.test.join(' ')).toContain('pg_isready');
    expect(services.redis.image).toMatch(/^redis:7/);
    const redisCmd = services.redis.command.join(' ');
    expect(redisCmd).toContain('--appendonly yes');
    expect(redisCmd).toContain('--maxmemory-policy noeviction');
    expect(services.redis.healthcheck.test.join(' ')).toContain('ping');
  });

  it('scales the worker with deploy.replicas and runs migrate once before the app', () => {
    expect(services.worker.deploy.replicas).toBeGreaterThanOrEqual(2);
    expect(services.migrate.restart).toBe('no');
    for (const s of ['web', 'worker', 'replay']) {
      expect(services[s].depends_on.migrate.condition).toBe('service_completed_successfully');
      expect(services[s].build).toBe('.');
    }
  });

  it('every command is an npm script that exists, or the same compiled entry point as the Procfile', () => {
    for (const name of ['migrate', 'web', 'worker', 'replay']) {
      const command = (services[name].command as string[]).join(' ');
      const npm = /^npm run (\S+)$/.exec(command);
      if (npm) expect(scripts[npm[1]!], `npm script ${npm[1]} of service ${name}`).toBeDefined();
      else expect(command, `service ${name}`).toBe(procfile[name]);
    }
    expect((services.migrate.command as string[]).join(' ')).toBe(procfile.release);
  });

  it('gives the app processes the environment they need', () => {
    for (const s of ['web', 'worker', 'replay', 'migrate']) {
      const env = services[s].environment;
      expect(env.DATABASE_URL).toContain('@postgres:5432/');
      expect(env.REDIS_URL).toBe('redis://redis:6379');
      expect(env.QUEUE_PREFIX).toBe('{hdt}');
    }
    expect(services.web.environment.HOST).toBe('0.0.0.0');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('builds compiled JavaScript on node:22-slim (Node 20 reached end of life in April 2026) with the lockfile', () => {
    expect(dockerfile).toMatch(/^FROM node:22-slim$/m);
    expect(dockerfile).toMatch(/npm ci\b/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/^CMD \["node", ("--[\w-]+(=\S+)?", )*"dist\/workers\/worker\.js"\]$/m);
  });
  it('copies every folder the build compiles, and the migrations', () => {
    for (const dir of [...buildConfig.include, 'migrations']) expect(dockerfile).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
  });
});
