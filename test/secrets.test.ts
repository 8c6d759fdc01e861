/**
 * Secrets never leave the host: after real runs (an upgrade, a rollback, a rate-limited release
 * API with GITHUB_TOKEN set on the worker, a release API that echoes request headers in its
 * errors, a failed upgrade that is rolled back), the GitHub token, each host's gateway token
 * (config.yaml) and device.key's bytes (raw, hex, base64) are searched for in:
 *   - the raw bytes of the Temporal dev server's SQLite store (and its WAL),
 *   - every run's exported history (payloads decoded from base64),
 *   - every line the worker logged (the Runtime logger), and process warnings,
 *   - the CLI's output (`status --json`, `history --json`, `show --json`) against that server.
 * Each search has a positive control (a string that must be found), so that a search that cannot
 * see anything does not pass.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { describeHostConfig, loadHostConfig } from '../worker/host-config.js';
import type { UpgradeResult } from '../workflows/types.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';

// Every entry the worker logs (the SDK, workflows and activities all log through the Runtime),
// written out in full: message, metadata, and errors with their message, stack, cause and
// details (stricter than any log format, which may drop some of it).
const logLines: string[] = [];
function expand(v: unknown, depth = 0): unknown {
  if (depth > 6) return '…';
  if (v instanceof Error) {
    const e = v as Error & { cause?: unknown; details?: unknown; type?: unknown };
    return {
      name: e.name,
      message: e.message,
      stack: e.stack,
      type: e.type,
      details: expand(e.details, depth + 1),
      cause: expand(e.cause, depth + 1),
    };
  }
  if (Array.isArray(v)) return v.map((x) => expand(x, depth + 1));
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x, depth + 1)]));
  return typeof v === 'bigint' ? String(v) : v;
}
Runtime.install({
  logger: new DefaultLogger('TRACE', (entry) =>
    logLines.push(`${entry.level} ${entry.message} ${JSON.stringify(expand(entry.meta))}`),
  ),
  shutdownSignals: [],
  telemetryOptions: { logging: { filter: { core: 'INFO', other: 'WARN' }, forward: {} } },
});
const warnings: string[] = [];
process.on('warning', (w) => warnings.push(`${w.name}: ${w.message}`));

/** Not shaped like a GitHub token, so that only not writing it (not a pattern scrubber) can pass. */
const GITHUB_TOKEN = `secret-gh-${randomBytes(20).toString('hex')}`;
const MAIN_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

let dir: string;
let dbFile: string;
let env: Harness['env'];
let releases: ReleaseServer;
let h: Harness;
const extraServers: ReleaseServer[] = [];
const echoServers: http.Server[] = [];
const hosts: HostUnderTest[] = [];
const runs: Array<{ host: HostUnderTest; workflowId: string; runId: string; result: UpgradeResult }> = [];
const cliOutput: string[] = [];

/** A release API that echoes the request's headers (the token among them) in its errors: 500, then 401. */
async function echoServer(): Promise<string> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const echo = JSON.stringify({ message: 'upstream error', request_headers: req.headers });
    res.writeHead(n++ === 0 ? 500 : 401, {
      'content-type': 'application/json',
      'x-echo-authorization': String(req.headers.authorization ?? ''),
      'www-authenticate': `Bearer error="invalid_token" token=${String(req.headers.authorization ?? '')}`,
    });
    res.end(echo);
  });
  echoServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function record(host: HostUnderTest, handle: Awaited<ReturnType<HostUnderTest['upgrade']>>) {
  const result = await host.result(handle);
  const d = await handle.describe();
  runs.push({ host, workflowId: handle.workflowId, runId: d.runId, result });
  return result;
}

async function cli(args: string[]): Promise<string> {
  const r = await execa(process.execPath, [MAIN_JS, ...args], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
      // The user's shell has the token too: the CLI must not print it either.
      GITHUB_TOKEN,
      NO_COLOR: '1',
    },
    reject: false,
    timeout: 60_000,
    all: true,
  });
  const out = r.all ?? '';
  cliOutput.push(`$ ${args.join(' ')} (exit ${r.exitCode})\n${out}`);
  return out;
}

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-secrets-'));
  dbFile = path.join(dir, 'temporal.sqlite');
  // The release API refuses calls without the token: the runs below prove the worker sent it.
  h = await Harness.start({ requireToken: GITHUB_TOKEN }, { dbFilename: dbFile });
  env = h.env;
  releases = h.releases;
});

after(async () => {
  await h?.close().catch(() => undefined);
  await Promise.all(extraServers.map((s) => s.close()));
  for (const s of echoServers) s.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('runs with secrets around', { concurrency: 2 }, () => {
  it('an upgrade, then a rollback to its backup', async () => {
    const host = await h.host({ extraEnv: { GITHUB_TOKEN } });
    hosts.push(host);
    const up = await record(host, await host.upgrade());
    assert.equal(up.outcome, 'upgraded', up.message);
    const back = await record(host, await host.rollback({ backupId: up.backupId }));
    assert.equal(back.outcome, 'restored', back.message);
    assert.equal(await host.sim.gatewayVersion(), '0.3.0');
    // device.key stays 0600 (and byte-identical) through the backup and the restore; backups are 0700.
    const key = path.join(host.sim.dataDir, 'device.key');
    assert.equal((await fs.stat(key)).mode & 0o777, 0o600);
    assert.deepEqual(await fs.readFile(key), host.sim.deviceKey);
    const backupIds = await fs.readdir(path.join(host.sim.dataDir, 'backups'));
    assert.equal(backupIds.length, 2, backupIds.join(', '));
    for (const id of backupIds) {
      const folder = path.join(host.sim.dataDir, 'backups', id);
      assert.equal((await fs.stat(folder)).mode & 0o777, 0o700, `backups/${id}`);
      assert.equal((await fs.stat(path.join(folder, 'files', 'data', 'device.key'))).mode & 0o777, 0o600);
    }
    // The gateway daemon the worker (re)started got no credential in its environment.
    for (const pid of await host.sim.daemonPids()) {
      const environ = await fs.readFile(`/proc/${pid}/environ`).catch(() => undefined);
      if (environ) assert.equal(environ.indexOf(GITHUB_TOKEN), -1, 'the gateway daemon’s environment holds the token');
    }
    assert.ok(
      releases.requests.some((r) => r.kind === 'api' && r.hasAuth && r.status === 200),
      'API calls carried the token',
    );
    assert.ok(!releases.requests.some((r) => r.kind !== 'api' && r.hasAuth), 'downloads never carry it');
  });

  it('a rate-limited release API (the token is limited too): refused, then waited out', async () => {
    const server = await startReleaseServer({ requireToken: GITHUB_TOKEN });
    extraServers.push(server);
    const host = await h.host({ extraEnv: { ...server.env(), GITHUB_TOKEN } });
    hosts.push(host);
    await server.setOptions({ rateLimit: { mode: 'github-403', resetInSeconds: 600, includeAuthenticated: true } });
    const refused = await record(host, await host.upgrade());
    assert.equal(refused.outcome, 'failed-unchanged', refused.message);
    assert.match(refused.failure?.error ?? '', /rate limit exceeded .*the token is rate limited too/);
    await server.setOptions({ rateLimit: { mode: 'retry-after-429', resetInSeconds: 2, includeAuthenticated: true } });
    const waited = await record(host, await host.upgrade());
    assert.equal(waited.outcome, 'upgraded', waited.message);
    assert.ok(
      logLines.some((l) => l.includes('GitHub API rate limited; waiting')),
      'the wait was logged',
    );
    assert.ok(
      server.requests.some((r) => r.status === 429 && r.hasAuth),
      'the limited calls carried the token',
    );
  });

  it('a release API that echoes the request headers in its errors', async () => {
    const url = await echoServer();
    const host = await h.host({
      extraEnv: { DEFENSECLAW_RELEASES_URL: url, DEFENSECLAW_DOWNLOAD_URL: url, GITHUB_TOKEN },
    });
    hosts.push(host);
    const r = await record(host, await host.upgrade());
    assert.equal(r.outcome, 'failed-unchanged', r.message);
    assert.match(r.failure?.error ?? '', /refused the credentials \(401\)/);
  });

  it('an upgrade whose new gateway never gets healthy: rolled back', async () => {
    const host = await h.host({ extraEnv: { GITHUB_TOKEN }, faults: { gateway: { '0.4.0': { health: 'error' } } } });
    hosts.push(host);
    const r = await record(host, await host.upgrade({ options: { healthTimeoutSeconds: 3 } }));
    assert.equal(r.outcome, 'rolled-back', r.message);
    assert.equal(await host.sim.gatewayVersion(), '0.3.0');
  });
});

describe('what a host’s commands and logs get', () => {
  it('commands run on the host get no credential in their environment; the config’s description has none', () => {
    const config = loadHostConfig({
      HOME: os.tmpdir(),
      PATH: '/usr/bin',
      DEFENSECLAW_HOST: 'h1',
      GITHUB_TOKEN,
      GH_TOKEN: `${GITHUB_TOKEN}-gh`,
      TEMPORAL_API_KEY: 'secret-api-key-0123456789',
      TEMPORAL_TLS_CLIENT_KEY_DATA: '-----BEGIN PRIVATE KEY-----secret',
      TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer secret-meta-0123456789',
    });
    const shown = JSON.stringify({ env: config.commandEnv, described: describeHostConfig(config), config });
    for (const secret of [GITHUB_TOKEN, 'secret-api-key', 'PRIVATE KEY', 'secret-meta']) {
      assert.ok(!shown.includes(secret), `${secret.slice(0, 14)}… reaches host commands or the config's description`);
    }
    assert.equal(config.githubToken(), GITHUB_TOKEN, 'the token is there for API calls');
  });
});

// ------------------------------------------------------------------ the search

interface Needle {
  what: string;
  bytes: Buffer;
}

function needles(): Needle[] {
  const out: Needle[] = [{ what: 'GITHUB_TOKEN', bytes: Buffer.from(GITHUB_TOKEN) }];
  for (const host of hosts) {
    out.push({ what: `${host.name} gateway token`, bytes: Buffer.from(host.sim.token) });
    const key = host.sim.deviceKey;
    out.push(
      { what: `${host.name} device.key (raw)`, bytes: key },
      { what: `${host.name} device.key (hex)`, bytes: Buffer.from(key.toString('hex')) },
      { what: `${host.name} device.key (HEX)`, bytes: Buffer.from(key.toString('hex').toUpperCase()) },
      { what: `${host.name} device.key (base64)`, bytes: Buffer.from(key.toString('base64')) },
      { what: `${host.name} device.key (base64url)`, bytes: Buffer.from(key.toString('base64url')) },
    );
  }
  return out;
}

function assertNotIn(haystack: Buffer, where: string): void {
  for (const n of needles()) assert.equal(haystack.indexOf(n.bytes), -1, `${n.what} found in ${where}`);
}

/** The JSON text plus every base64 string in it decoded (payloads are base64 in exported histories). */
function withDecodedPayloads(json: string): Buffer {
  const parts: Buffer[] = [Buffer.from(json)];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (v.length >= 8 && /^[A-Za-z0-9+/]+={0,2}$/.test(v)) parts.push(Buffer.from(v, 'base64'));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(JSON.parse(json));
  return Buffer.concat(parts);
}

describe('no secret anywhere', () => {
  it('the runs happened', () => {
    assert.equal(runs.length, 6, JSON.stringify(runs.map((r) => r.result.outcome)));
    assert.equal(hosts.length, 4);
  });

  it('not in the results and failure messages', () => {
    for (const r of runs) assertNotIn(Buffer.from(JSON.stringify(r.result)), `the result of ${r.workflowId}`);
  });

  it('not in the exported histories', async () => {
    let control = false;
    for (const r of runs) {
      const decoded = withDecodedPayloads(await h.exportHistory(r.workflowId, r.runId));
      assertNotIn(decoded, `the history of ${r.workflowId}/${r.runId}`);
      control ||= decoded.includes('gateway healthy');
    }
    assert.ok(control, 'control: a result message is found in the decoded histories');
  });

  it('not in the CLI’s output (status, history, show)', async () => {
    for (const host of hosts) {
      const out = await cli(['status', '--json', '--host', host.name]);
      assert.match(out, /"outcome"/, out.slice(0, 400));
    }
    assert.match(await cli(['history', '--json']), /"workflowId"/);
    for (const r of runs.slice(0, 3)) await cli(['show', r.workflowId, '--run-id', r.runId, '--json']);
    const all = cliOutput.join('\n');
    assert.match(all, /upgraded|restored|rolled-back/, 'control: the CLI printed the runs');
    assertNotIn(Buffer.from(all), 'the CLI output');
  });

  it('not in the worker’s log lines or process warnings', () => {
    const text = `${logLines.join('\n')}\n${warnings.join('\n')}`;
    assert.ok(text.includes('defenseclaw-upgrade worker starting'), 'control: the worker’s log was captured');
    assertNotIn(Buffer.from(text), 'the worker log');
  });

  it('not in the Temporal store (the raw bytes of the SQLite file and its WAL)', async () => {
    await h.close();
    const files = (await fs.readdir(dir)).filter((f) => f.startsWith(path.basename(dbFile)));
    assert.ok(files.includes(path.basename(dbFile)), `the store exists (${files.join(', ')})`);
    const bytes = Buffer.concat(await Promise.all(files.map((f) => fs.readFile(path.join(dir, f)))));
    assert.ok(bytes.length > 100_000, `the store holds the runs (${bytes.length} bytes)`);
    // Control: payload bytes are stored as they are (a result message is found).
    assert.ok(bytes.includes('gateway healthy'), 'control: a result message is found in the store');
    assert.ok(bytes.includes(hosts[0]!.name), 'control: a host name is found in the store');
    assertNotIn(bytes, 'the SQLite store');
  });
});
