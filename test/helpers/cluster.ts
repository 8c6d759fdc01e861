/**
 * A real Temporal cluster for tests, as production runs one: PostgreSQL (a throwaway instance on a
 * loopback port in a temporary folder), the `temporal` and `temporal_visibility` schemas set up by
 * deploy/temporal/setup-schema.sh, and `temporal-server start` (all services in one process) with
 * the server's embedded config template driven by deploy/temporal/server.env and
 * deploy/temporal/dynamicconfig.yaml: the same files docker-compose.yml uses. The namespace and
 * the search attributes come from deploy/temporal/register-namespace.sh, as in compose.
 *
 * The server and its schema tool are built once with `go install` (pinned to the version
 * docker-compose.yml runs) into <project cache>/temporal-server-<version>/bin.
 *
 * With `tls: true` the frontend requires mTLS (a CA, a server and a client certificate made with
 * openssl here), and every client (the SDK's Client and NativeConnection, the Temporal CLI) is set
 * up from the environment a user would set: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import type { NativeConnection, NativeConnectionOptions } from '@temporalio/worker';
import { connectTemporal } from '../../client/temporal.js';
import { isPortFree } from '../../worker/agent/dev-server.js';
import { projectCacheDir } from '../../worker/agent/temporal-cli.js';
import { connectWorker, workerConnectionOptions } from '../../worker/runtime.js';
import { temporalCliPath } from './temporal.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The server version, the same as docker-compose.yml's temporalio/server and admin-tools images. */
export const TEMPORAL_SERVER_VERSION = '1.31.0';
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';

/** The repository's deploy/temporal folder (shared with docker-compose.yml). */
export const DEPLOY_DIR = fileURLToPath(new URL('../../../deploy/temporal', import.meta.url));

// -------------------------------------------------------------------------------------------------
// Binaries

export interface ServerBinaries {
  server: string;
  sqlTool: string;
  /** True when this call built them. */
  built: boolean;
  ms: number;
}

export function serverCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(projectCacheDir(env), `temporal-server-${TEMPORAL_SERVER_VERSION}`);
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** `go`: $GO, on PATH, or /usr/local/go/bin/go. */
export function findGo(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.GO,
    ...(env.PATH ?? '').split(path.delimiter).map((d) => d && path.join(d, 'go')),
    '/usr/local/go/bin/go',
  ];
  const go = candidates.find((c): c is string => Boolean(c) && isExecutable(c!));
  if (!go) {
    throw new Error(
      `Go is needed to build the Temporal server ${TEMPORAL_SERVER_VERSION} once: install Go 1.26 or later (https://go.dev/dl/) or set GO=/path/to/go`,
    );
  }
  return go;
}

/**
 * The cached temporal-server and temporal-sql-tool, built with `go install` when missing (once:
 * concurrent callers wait for the first one's lock).
 */
export async function ensureServerBinaries(
  opts: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<ServerBinaries> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((l: string) => process.stderr.write(`[cluster] ${l}\n`));
  const dir = serverCacheDir(env);
  const server = path.join(dir, 'bin', 'temporal-server');
  const sqlTool = path.join(dir, 'bin', 'temporal-sql-tool');
  const t0 = Date.now();
  const done = () => isExecutable(server) && isExecutable(sqlTool);
  if (done()) return { server, sqlTool, built: false, ms: Date.now() - t0 };

  await fsp.mkdir(path.dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      await fsp.mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process builds: wait for it (a lock older than 30 minutes is a dead builder's).
      const age = Date.now() - (await fsp.stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 30 * 60_000) await fsp.rm(lock, { recursive: true, force: true });
      if (done()) return { server, sqlTool, built: false, ms: Date.now() - t0 };
      await sleep(2000);
    }
  }
  try {
    if (done()) return { server, sqlTool, built: false, ms: Date.now() - t0 };
    const go = findGo(env);
    const tmp = `${dir}.tmp-${process.pid}`;
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.mkdir(path.join(tmp, 'bin'), { recursive: true });
    const pkgs = ['cmd/server', 'cmd/tools/sql'].map(
      (p) => `${TEMPORAL_SERVER_MODULE}/${p}@v${TEMPORAL_SERVER_VERSION}`,
    );
    log(
      `building Temporal server ${TEMPORAL_SERVER_VERSION} into ${dir} (go install; about 6 minutes on 2 cores, once)`,
    );
    const child = spawn(go, ['install', '-trimpath', '-ldflags=-s -w', ...pkgs], {
      env: { ...env, GOBIN: path.join(tmp, 'bin'), CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
      cwd: tmp,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`go install ${pkgs.join(' ')} failed (exit ${code})`);
    await fsp.rename(path.join(tmp, 'bin', 'server'), path.join(tmp, 'bin', 'temporal-server'));
    await fsp.rename(path.join(tmp, 'bin', 'sql'), path.join(tmp, 'bin', 'temporal-sql-tool'));
    await fsp.writeFile(path.join(tmp, 'VERSION'), `${TEMPORAL_SERVER_VERSION}\n`);
    await fsp.rm(dir, { recursive: true, force: true });
    await fsp.rename(tmp, dir);
    log(`built Temporal server ${TEMPORAL_SERVER_VERSION} in ${Math.round((Date.now() - t0) / 1000)} s`);
    return { server, sqlTool, built: true, ms: Date.now() - t0 };
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}

/** The folder of PostgreSQL's server programs (initdb, pg_ctl): Debian's newest, else pg_config's. */
export async function findPostgresBin(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await fsp.readdir(root).catch(() => [] as string[]))
    .filter((v) => isExecutable(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length) return path.join(root, versions[0]!, 'bin');
  const fromPgConfig = await run('pg_config', ['--bindir']).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  if (fromPgConfig && isExecutable(path.join(fromPgConfig, 'initdb'))) return fromPgConfig;
  throw new Error('PostgreSQL server programs (initdb, pg_ctl) not found: apt-get install postgresql (.ci/run does)');
}

/** KEY=VALUE lines of an env file (comments and blank lines skipped), as docker compose reads them. */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${file}: not KEY=VALUE: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// Certificates

export interface TlsFiles {
  dir: string;
  caCert: string;
  /** The server's certificate (also the system worker's client certificate), for localhost and 127.0.0.1. */
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/**
 * A CA, a server certificate and a client certificate (EC P-256, valid two days), made with
 * openssl: Node's crypto cannot issue X.509 certificates, and openssl is on every machine that
 * runs these tests (Debian's base system), so no npm dependency is needed for it.
 */
export async function makeCertificates(dir: string): Promise<TlsFiles> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const f = (n: string) => path.join(dir, n);
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=defenseclaw-upgrade test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  const issue = async (name: string, cn: string, ext: string) => {
    await fsp.writeFile(f(`${name}.ext`), ext);
    await openssl(['req', ...key, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
    await openssl([
      'x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-days', '2', '-out', f(`${name}.pem`), '-extfile', f(`${name}.ext`),
    ]); // prettier-ignore
  };
  const common = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
  await issue(
    'server',
    'localhost',
    `${common}extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n`,
  );
  await issue('client', 'defenseclaw-worker', `${common}extendedKeyUsage=clientAuth\n`);
  for (const n of await fsp.readdir(dir)) await fsp.chmod(f(n), 0o600);
  return {
    dir,
    caCert: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

// -------------------------------------------------------------------------------------------------
// The cluster

export interface ClusterTimings {
  /** Checking (or building) the server binaries. */
  binariesMs: number;
  /** initdb and the first start of PostgreSQL. */
  postgresMs: number;
  /** Both schemas with the schema tool. */
  schemaMs: number;
  /** From spawning temporal-server to its frontend answering. */
  serverStartMs: number;
  /** The namespace and search attributes (register-namespace.sh). */
  namespaceMs: number;
  totalMs: number;
}

export interface Cluster {
  address: string;
  namespace: string;
  client: Client;
  nativeConnection: NativeConnection;
  /** What a worker or the CLI sets to use this cluster (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_*). */
  env: Record<string, string>;
  /** Environment for the Temporal CLI (the same variables: it reads env-config too). */
  cliEnv: Record<string, string>;
  tls?: TlsFiles;
  timings: ClusterTimings;
  dir: string;
  /** The server's log file (stdout and stderr of every start). */
  serverLog: string;
  /** SIGKILL the server (a crash). */
  killServer(): Promise<void>;
  /** Start the server again (same ports, same database) and wait until the namespace answers. */
  startServer(): Promise<number>;
  /** Stop PostgreSQL at once (`pg_ctl stop -m immediate`, a crash) and start it again after `downMs`. */
  restartPostgres(downMs: number): Promise<void>;
  teardown(): Promise<void>;
}

export interface StartClusterOptions {
  namespace?: string;
  /** Frontend with mTLS (client certificates required). */
  tls?: boolean;
  log?: (line: string) => void;
}

const SERVER_PORTS = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
] as const;

/**
 * n distinct free loopback ports below 32768: the server stores membership ports in a PostgreSQL
 * smallint ("value out of range for type smallint" above it), so the OS's ephemeral range will not do.
 */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    if (!ports.has(p) && (await isPortFree(p))) ports.add(p);
  }
  return [...ports];
}

/** The reason in the server's last fatal or error log line (JSON), else its last line. */
function serverFailure(log: string): string {
  const lines = log.trim().split('\n');
  for (const level of ['fatal', 'error']) {
    for (const line of [...lines].reverse()) {
      try {
        const j = JSON.parse(line) as { level?: string; msg?: string; error?: string };
        if (j.level === level) return [j.msg, j.error].filter(Boolean).join(': ');
      } catch {
        // not JSON
      }
    }
  }
  return lines.at(-1) ?? '';
}

/** Runs a PostgreSQL program as the postgres user when we are root (PostgreSQL refuses root). */
function pgCommand(bin: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

async function runPg(bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = pgCommand(bin, args);
  await run(cmd, argv, { maxBuffer: 4 * 1024 * 1024 }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(
      `${path.basename(bin)} failed: ${(err.stderr || err.message).trim().split('\n').slice(-2).join(' | ')}`,
    );
  });
}

export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`[cluster] ${l}\n`));
  const namespace = opts.namespace ?? 'default';
  const t0 = Date.now();
  const [bins, pgBin, cli] = await Promise.all([ensureServerBinaries({ log }), findPostgresBin(), temporalCliPath()]);
  const binariesMs = Date.now() - t0;

  // A folder only we (and the postgres user, for its data) can use; root needs it traversable.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dcu-cluster-'));
  await fsp.chmod(dir, 0o711);
  const pgDir = path.join(dir, 'pg');
  const pgData = path.join(pgDir, 'data');
  await fsp.mkdir(pgDir, { mode: 0o700 });
  const [pgPort, ...ports] = await distinctFreePorts(1 + SERVER_PORTS.length);
  const pgUser = 'temporal';
  const pgPassword = `pw-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const pwFile = path.join(pgDir, 'pwfile');
  await fsp.writeFile(pwFile, `${pgPassword}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) await run('chown', ['-R', 'postgres:postgres', pgDir]);

  const pgCtl = path.join(pgBin, 'pg_ctl');
  const pgOptions = [
    `-c listen_addresses=127.0.0.1 -p ${pgPort} -k ${pgDir}`,
    // A throwaway database: durability against power loss buys nothing here. But a committed
    // transaction must survive a crash of PostgreSQL itself (restartPostgres), so
    // synchronous_commit stays on: without it the server saw its own writes vanish and wedged.
    '-c fsync=off -c full_page_writes=off -c max_connections=200',
  ].join(' ');
  const pgLog = path.join(pgDir, 'postgres.log');
  const startPg = () => runPg(pgCtl, ['-D', pgData, '-l', pgLog, '-w', '-t', '60', '-o', pgOptions, 'start']);
  const stopPg = (mode: 'fast' | 'immediate') => runPg(pgCtl, ['-D', pgData, '-w', '-m', mode, 'stop']);

  let server: ChildProcess | undefined;
  let serverExit: Promise<void> = Promise.resolve();
  let pgRunning = false;
  const serverLog = path.join(dir, 'temporal-server.log');
  const cleanup = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server?.kill('SIGKILL'), 5000);
      await serverExit;
      clearTimeout(timer);
    }
    if (pgRunning) await stopPg('fast').catch(() => undefined);
    pgRunning = false;
    process.off('exit', onExit);
    await fsp.rm(dir, { recursive: true, force: true });
  };
  // A test process that dies without teardown must not leave a server and a database behind.
  const onExit = () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    if (pgRunning) {
      const [cmd, argv] = pgCommand(pgCtl, ['-D', pgData, '-m', 'immediate', 'stop']);
      spawnSync(cmd, argv, { stdio: 'ignore', timeout: 10_000 });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  try {
    const tPg = Date.now();
    await runPg(path.join(pgBin, 'initdb'), [
      '-D', pgData, '-U', pgUser, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--no-sync', '-E', 'UTF8',
    ]); // prettier-ignore
    await startPg();
    pgRunning = true;
    const postgresMs = Date.now() - tPg;

    // The schemas, exactly as compose's temporal-admin-tools one-shot sets them up.
    const tSchema = Date.now();
    const sqlEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      TEMPORAL_SQL_TOOL: bins.sqlTool,
      SQL_HOST: '127.0.0.1',
      SQL_PORT: String(pgPort),
      SQL_USER: pgUser,
      SQL_PASSWORD: pgPassword,
    };
    await run('sh', [path.join(DEPLOY_DIR, 'setup-schema.sh')], { env: sqlEnv, maxBuffer: 16 * 1024 * 1024 }).catch(
      (err: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(
          `setup-schema.sh failed: ${(err.stderr || err.stdout || err.message).trim().split('\n').slice(-3).join(' | ')}`,
        );
      },
    );
    const schemaMs = Date.now() - tSchema;

    let tls: TlsFiles | undefined;
    if (opts.tls) tls = await makeCertificates(path.join(dir, 'tls'));
    const portEnv = Object.fromEntries(SERVER_PORTS.map((k, i) => [k, String(ports[i])]));
    const frontendPort = ports[0]!;
    const address = `127.0.0.1:${frontendPort}`;
    const serverEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...readEnvFile(path.join(DEPLOY_DIR, 'server.env')),
      DYNAMIC_CONFIG_FILE_PATH: path.join(DEPLOY_DIR, 'dynamicconfig.yaml'),
      POSTGRES_SEEDS: '127.0.0.1',
      DB_PORT: String(pgPort),
      POSTGRES_USER: pgUser,
      POSTGRES_PWD: pgPassword,
      BIND_ON_IP: '127.0.0.1',
      TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
      ...portEnv,
      ...(tls
        ? {
            // Frontend: mTLS for every client. Internode (and the server's own system worker, which
            // is a client of the frontend) use the server certificate.
            TEMPORAL_TLS_REQUIRE_CLIENT_AUTH: 'true',
            TEMPORAL_TLS_FRONTEND_CERT: tls.serverCert,
            TEMPORAL_TLS_FRONTEND_KEY: tls.serverKey,
            TEMPORAL_TLS_CLIENT1_CA_CERT: tls.caCert,
            TEMPORAL_TLS_CLIENT2_CA_CERT: tls.caCert,
            TEMPORAL_TLS_SERVER_CERT: tls.serverCert,
            TEMPORAL_TLS_SERVER_KEY: tls.serverKey,
            TEMPORAL_TLS_SERVER_CA_CERT: tls.caCert,
            TEMPORAL_TLS_FRONTEND_SERVER_NAME: 'localhost',
            TEMPORAL_TLS_INTERNODE_SERVER_NAME: 'localhost',
          }
        : {}),
    };

    // What a user sets (the SDK's and the Temporal CLI's env-config).
    const env: Record<string, string> = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      ...(tls
        ? {
            TEMPORAL_TLS: 'true',
            TEMPORAL_TLS_CLIENT_CERT_PATH: tls.clientCert,
            TEMPORAL_TLS_CLIENT_KEY_PATH: tls.clientKey,
            TEMPORAL_TLS_SERVER_CA_CERT_PATH: tls.caCert,
            TEMPORAL_TLS_SERVER_NAME: 'localhost',
          }
        : {}),
    };
    const cliEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env };

    const spawnServer = async (): Promise<number> => {
      const ts = Date.now();
      const out = fs.openSync(serverLog, 'a', 0o600);
      server = spawn(bins.server, ['--allow-no-auth', 'start'], {
        env: serverEnv,
        cwd: dir,
        stdio: ['ignore', out, out],
      });
      fs.closeSync(out);
      const child = server;
      serverExit = new Promise((resolve) => child.once('exit', () => resolve()));
      // The frontend answers the cluster health check (the CLI, with the user's TLS settings).
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(
            `temporal-server exited before answering: ${serverFailure(fs.readFileSync(serverLog, 'utf8'))}`,
          );
        }
        const ok = await run(cli, ['operator', 'cluster', 'health'], { env: cliEnv, timeout: 5000 }).then(
          (r) => /SERVING/.test(r.stdout),
          () => false,
        );
        if (ok) return Date.now() - ts;
        if (Date.now() - ts > 60_000) throw new Error('temporal-server did not answer within 60 s');
        await sleep(100);
      }
    };

    const serverStartMs = await spawnServer();
    const tNs = Date.now();
    await run('sh', [path.join(DEPLOY_DIR, 'register-namespace.sh')], {
      env: { ...cliEnv, TEMPORAL_CLI: cli, NAMESPACE: namespace, RETENTION: '1d' },
      maxBuffer: 4 * 1024 * 1024,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(
        `register-namespace.sh failed: ${(err.stderr || err.stdout || err.message).trim().split('\n').slice(-3).join(' | ')}`,
      );
    });
    const namespaceMs = Date.now() - tNs;

    // The SDK's connections, from the same environment a user sets.
    const conn = await connectTemporal({ env: { ...env, HOME: dir }, connectTimeoutMs: 10_000 });
    const target = workerConnectionOptions({ ...env, HOME: dir });
    const nativeConnection = await connectWorker(target.options as NativeConnectionOptions & { address: string });
    const timings: ClusterTimings = {
      binariesMs,
      postgresMs,
      schemaMs,
      serverStartMs,
      namespaceMs,
      totalMs: Date.now() - t0,
    };
    log(
      `cluster at ${address}${tls ? ' (mTLS)' : ''}: binaries ${binariesMs} ms, PostgreSQL ${postgresMs} ms, schemas ${schemaMs} ms, server ${serverStartMs} ms, namespace ${namespaceMs} ms, total ${timings.totalMs} ms`,
    );

    return {
      address,
      namespace,
      client: conn.client,
      nativeConnection,
      env,
      cliEnv,
      tls,
      timings,
      dir,
      serverLog,
      async killServer() {
        if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
        await serverExit;
      },
      startServer: spawnServer,
      async restartPostgres(downMs: number) {
        await stopPg('immediate');
        pgRunning = false;
        await sleep(downMs);
        await startPg();
        pgRunning = true;
      },
      async teardown() {
        await nativeConnection.close().catch(() => undefined);
        await conn.close().catch(() => undefined);
        // The server's and PostgreSQL's logs stay for a human (test-artifacts/ is gitignored).
        const artifacts = fileURLToPath(new URL('../../../test-artifacts', import.meta.url));
        await fsp.mkdir(artifacts, { recursive: true }).catch(() => undefined);
        const tag = `${path.basename(process.argv[1] ?? 'cluster', '.js')}-${process.pid}`;
        await fsp.copyFile(serverLog, path.join(artifacts, `temporal-server-${tag}.log`)).catch(() => undefined);
        await fsp.copyFile(pgLog, path.join(artifacts, `postgres-${tag}.log`)).catch(() => undefined);
        await cleanup();
      },
    };
  } catch (err) {
    const keep = path.join(os.tmpdir(), `dcu-cluster-failed-${process.pid}.log`);
    await fsp.copyFile(serverLog, keep).catch(() => undefined);
    await cleanup().catch(() => undefined);
    throw err;
  }
}
