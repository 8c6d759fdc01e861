/**
 * Hostile releases: the release server lies (sizes, checksums, names, redirects, archives). Every
 * lie is refused BEFORE the gateway is stopped: the run ends `failed-unchanged`, the gateway still
 * runs 0.3.0 (same daemon), no file is written outside the staging folder (the hostile archives'
 * EVIL_TARGET never appears). The HTTP rules (redirect hops, https→http, allowed hosts, timeouts,
 * credentials, bodies longer than declared) are also checked on activities/http.ts and
 * downloadArtifact directly, against small local servers.
 *
 * https→http: the release server speaks plain HTTP, so that case runs against a local HTTPS
 * server whose self-signed certificate is generated at test time with `openssl`; httpRequest
 * (node:https) trusts it through https.globalAgent (an Agent with that CA), set for that test
 * only. NODE_EXTRA_CA_CERTS is read at process start, so it cannot be used in-process.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createStaging, downloadArtifact } from '../activities/host/artifacts.js';
import { httpRequest } from '../activities/http.js';
import { loadHostConfig, type HostConfig } from '../worker/host-config.js';
import { installRuntime } from '../worker/runtime.js';
import type { UpgradeResult } from '../workflows/types.js';
import { EVIL_TARGET, hostPlatform, tarballName, wheelName, type MaliciousKind } from './fixtures/host/build.js';
import type { HostSnapshot } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer, type ReleaseServerOptions } from './fixtures/releases/server.js';
import { activityHistory, type ActivityRecord } from './helpers/history.js';
import { Harness, type HostUnderTest } from './helpers/harness.js';

// The worker's log lines (activities log through the Runtime's logger), for the loud warnings.
const logLines: string[] = [];
installRuntime({ level: 'INFO', write: (line) => logLines.push(line) });

const TO = '0.4.0';
const TARBALL = tarballName(TO, hostPlatform());
const WHEEL = wheelName(TO);

/** Every entry under HOME (type, mode, digest), minus what the running gateway and the fixture write. */
async function homeTree(home: string): Promise<Record<string, string>> {
  const skip = new Set(['.defenseclaw/gateway.log', '.defenseclaw/.sim', '.cache']);
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const name of (await fs.readdir(d)).sort()) {
      const abs = path.join(d, name);
      const rel = path.relative(home, abs);
      if (skip.has(rel) || name === '__pycache__') continue;
      const st = await fs.lstat(abs);
      if (st.isSymbolicLink()) out[rel] = `link ${await fs.readlink(abs)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(abs);
      } else {
        const digest = createHash('sha256')
          .update(await fs.readFile(abs))
          .digest('hex');
        out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${digest}`;
      }
    }
  };
  await walk(home);
  return out;
}

/** Paths the hostile archives aim at (absolute, `..` from staging, through a symlink to /tmp, a hard link). */
function evilPaths(u: HostUnderTest): string[] {
  const name = path.basename(EVIL_TARGET);
  return [
    EVIL_TARGET,
    path.join(os.tmpdir(), name),
    path.join(u.sim.dataDir, name),
    path.join(u.sim.dataDir, 'staging', name),
    path.join(u.sim.home, name),
    path.join(u.sim.binDir, name),
  ];
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}

let h: Harness;
const servers: ReleaseServer[] = [];

before(async () => {
  for (const p of [EVIL_TARGET]) assert.equal(await exists(p), false, `${p} exists before the tests`);
  h = await Harness.start();
});

after(async () => {
  await h?.close();
  await Promise.all(servers.map((s) => s.close()));
});

interface CaseRun {
  server: ReleaseServer;
  host: HostUnderTest;
  result: UpgradeResult;
  activities: ActivityRecord[];
}

/** A host of its own with a release server of its own (with `release` switches), upgraded to the latest. */
async function runCase(
  release: Partial<ReleaseServerOptions>,
  extraEnv: Record<string, string> = {},
  check?: (r: { snapshot: HostSnapshot; pids: number[]; tree: Record<string, string> }) => void,
): Promise<CaseRun> {
  const server = await startReleaseServer(release);
  servers.push(server);
  const host = await h.host({ extraEnv: { ...server.env(), ...extraEnv } });
  const before = {
    snapshot: await host.sim.snapshot(),
    pids: await host.sim.daemonPids(),
    tree: await homeTree(host.sim.home),
  };
  check?.(before);
  const handle = await host.upgrade();
  const result = await host.result(handle);
  const { activities } = await activityHistory(handle);
  if (result.outcome === 'failed-unchanged') {
    // Host unchanged: files byte for byte, the same gateway daemon still healthy on 0.3.0.
    assert.deepEqual(await host.sim.snapshot(), before.snapshot, 'host files changed');
    assert.equal(await host.sim.gatewayVersion(), '0.3.0');
    const health = await host.sim.health();
    assert.equal(health?.gateway.state, 'running');
    assert.equal(health?.provenance?.binary_version, '0.3.0');
    assert.deepEqual(await host.sim.daemonPids(), before.pids, 'the gateway daemon was restarted');
    // Refused before the stop: nothing after the staging steps ran.
    for (const a of ['createBackup', 'stopGateway', 'installGateway', 'switchVenv', 'runMigrations']) {
      assert.ok(!activities.some((x) => x.type === a), `${a} ran`);
    }
    // Nothing written anywhere under HOME outside the staging folder, which is empty again.
    const afterTree = await homeTree(host.sim.home);
    const { '.defenseclaw/staging': staging, ...rest } = afterTree;
    const { '.defenseclaw/staging': _before, ...restBefore } = before.tree;
    assert.deepEqual(rest, restBefore, 'files changed outside the staging folder');
    assert.ok(staging === undefined || staging.startsWith('dir 7'), `staging is ${staging}`);
    assert.deepEqual(await fs.readdir(path.join(host.sim.dataDir, 'staging')).catch(() => []), []);
  }
  for (const p of evilPaths(host)) assert.equal(await exists(p), false, `${p} was written`);
  return { server, host, result, activities };
}

/** The one activity that refused: its type, non-retryable, on its first attempt. */
function refusedBy(run: CaseRun, activity: string, failureType: string): void {
  const failed = run.activities.filter((a) => a.failureType);
  assert.deepEqual(
    failed.map((a) => ({ type: a.type, failureType: a.failureType, nonRetryable: a.nonRetryable, attempt: a.attempt })),
    [{ type: activity, failureType, nonRetryable: true, attempt: 1 }],
    run.result.message,
  );
}

/** Whether any release artifact (not checksums.txt or the manifest, read when the release is resolved) was fetched. */
function artifactDownloaded(run: CaseRun): boolean {
  return run.server.requests.some(
    (r) => r.kind === 'asset' && r.method === 'GET' && !/(checksums\.txt|upgrade-manifest\.json)$/.test(r.path),
  );
}

function failedUnchanged(run: CaseRun, step: string, message: RegExp): void {
  assert.equal(run.result.outcome, 'failed-unchanged', run.result.message);
  assert.equal(run.result.failure?.step, step, run.result.message);
  assert.match(run.result.failure?.error ?? '', message);
  assert.match(run.result.message, /before the gateway was stopped; nothing was changed/);
}

describe('hostile releases are refused before the gateway is stopped', { concurrency: 3 }, () => {
  it('a redirect to a host that is not allowed (localhost instead of 127.0.0.1)', async () => {
    const run = await runCase({ redirectTo: 'http://localhost:{port}' });
    // checksums.txt is the first file fetched (when the release is resolved): the redirect is refused there.
    failedUnchanged(run, 'resolve', /refusing to contact localhost:\d+: not an allowed release host/);
    refusedBy(run, 'resolveRelease', 'UnsafeRedirect');
    assert.deepEqual(
      run.server.requests.filter((r) => r.kind === 'asset'),
      [],
      'the redirect target was never contacted',
    );
  });

  it('an asset bigger than the release declares (declaredSizeLie)', async () => {
    const run = await runCase({ declaredSizeLie: [TARBALL] });
    failedUnchanged(
      run,
      'preflight',
      new RegExp(`${TARBALL.replace(/\./g, '\\.')} is \\d+ bytes but the release declares \\d+`),
    );
    refusedBy(run, 'preflight', 'TooLarge');
    assert.ok(!artifactDownloaded(run), 'no artifact was downloaded');
  });

  it('an asset larger than the host’s cap (DEFENSECLAW_MAX_ARTIFACT_BYTES)', async () => {
    const run = await runCase({}, { DEFENSECLAW_MAX_ARTIFACT_BYTES: '2048' });
    failedUnchanged(run, 'preflight', /over the 2048-byte cap/);
    refusedBy(run, 'preflight', 'TooLarge');
    assert.ok(!artifactDownloaded(run), 'no artifact was downloaded');
  });

  it('checksums.txt without a line for the gateway and no GitHub digest for it: refused when resolved', async () => {
    const run = await runCase({ checksumOmit: [TARBALL], noDigest: [TARBALL] });
    failedUnchanged(run, 'resolve', /neither checksums\.txt nor GitHub's asset digest covers it/);
    refusedBy(run, 'resolveRelease', 'ChecksumsMissing');
    assert.ok(!artifactDownloaded(run), 'the unverifiable asset was not even downloaded');
  });

  it("checksums.txt without a line for the gateway: GitHub's digest verifies it, and a lying digest is refused", async () => {
    const run = await runCase({ checksumOmit: [TARBALL], digestLie: [TARBALL] });
    failedUnchanged(run, 'download', /checksum mismatch for defenseclaw_0\.4\.0_/);
    refusedBy(run, 'downloadArtifact', 'ChecksumMismatch');
  });

  it("checksums.txt and GitHub's digest disagree: the release is refused when resolved", async () => {
    const run = await runCase({ digestLie: [TARBALL] });
    failedUnchanged(run, 'resolve', /checksums\.txt and GitHub's digest disagree for defenseclaw_0\.4\.0_/);
    refusedBy(run, 'resolveRelease', 'ChecksumMismatch');
    assert.ok(!artifactDownloaded(run), 'nothing was downloaded');
  });

  it('no checksums.txt and no GitHub digests at all', async () => {
    const run = await runCase({ noChecksums: true, noDigest: true });
    failedUnchanged(run, 'resolve', /neither checksums\.txt nor GitHub's asset digest covers it/);
    refusedBy(run, 'resolveRelease', 'ChecksumsMissing');
    assert.ok(!artifactDownloaded(run), 'no artifact was downloaded');
  });

  it('a corrupted gateway tarball (checksum mismatch)', async () => {
    const run = await runCase({ corrupt: [TARBALL] });
    failedUnchanged(run, 'download', /checksum mismatch for defenseclaw_0\.4\.0_/);
    refusedBy(run, 'downloadArtifact', 'ChecksumMismatch');
  });

  it('a corrupted wheel (checksum mismatch)', async () => {
    const run = await runCase({ corrupt: [WHEEL] });
    failedUnchanged(run, 'download', /checksum mismatch for defenseclaw-0\.4\.0-py3-none-any\.whl/);
    refusedBy(run, 'downloadArtifact', 'ChecksumMismatch');
  });

  it('extra asset names with ../ in the release JSON (extraAssetNames)', async () => {
    const run = await runCase({ extraAssetNames: ['../defenseclaw-sim-evil', '../../.bashrc'] });
    failedUnchanged(run, 'resolve', /asset name "\.\.\/defenseclaw-sim-evil"/);
    refusedBy(run, 'resolveRelease', 'InvalidInput');
    assert.deepEqual(
      run.server.requests.filter((r) => r.kind !== 'api'),
      [],
      'no download was attempted',
    );
  });

  const MALICIOUS: Array<[MaliciousKind, RegExp]> = [
    ['dotdot', /unsafe archive: a path with \.\. \(\.\.\/defenseclaw-sim-evil\)/],
    ['symlink', /unsafe archive: a link \(escape\)/],
    ['absolute', /unsafe archive: an absolute path \(\/tmp\/defenseclaw-sim-evil\)/],
    ['hardlink', /unsafe archive: a link \(escape-link\)/],
    ['huge', /unsafe archive: more than \d+ bytes of content/],
  ];
  for (const [kind, message] of MALICIOUS) {
    it(`a malicious gateway tarball: ${kind}`, async () => {
      const run = await runCase({ maliciousTarball: kind });
      failedUnchanged(run, 'stage', message);
      refusedBy(run, 'stageGateway', 'UnsafeArchive');
      // Checksums matched (only the extractor can catch these); nothing was staged beside the binary.
      assert.equal(run.result.artifacts.length, 2);
      const staged = (await fs.readdir(run.host.sim.binDir)).filter((n) => n.startsWith('.defenseclaw-gateway.'));
      assert.deepEqual(staged, []);
    });
  }
});

describe('DEFENSECLAW_ALLOW_MISSING_CHECKSUMS=1 (the host’s operator, never a workflow)', () => {
  it('a release without checksums.txt installs, and says loudly that nothing was verified', async () => {
    const run = await runCase({ noChecksums: true, noDigest: true }, { DEFENSECLAW_ALLOW_MISSING_CHECKSUMS: '1' });
    assert.equal(run.result.outcome, 'upgraded', run.result.message);
    assert.equal(await run.host.sim.gatewayVersion(), TO);
    for (const name of [TARBALL, WHEEL]) {
      assert.ok(
        logLines.some((l) => /WARN/.test(l) && l.includes(`NOT VERIFIED: ${name}`)),
        `a warning names ${name}`,
      );
    }
    assert.ok(
      logLines.some((l) => /WARN/.test(l) && /no checksums\.txt/.test(l)),
      'a warning says checksums.txt is missing',
    );
    for (const p of evilPaths(run.host)) assert.equal(await exists(p), false);
  });
});

// ------------------------------------------------------------------ activities/http.ts and downloads, directly

function listenHttp(
  handler: http.RequestListener,
): Promise<{ server: http.Server; port: number; seen: http.IncomingMessage[] }> {
  const seen: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, seen })),
  );
}

function closeServer(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function tempConfig(env: Record<string, string>): Promise<{ config: HostConfig; home: string }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-hostile-http-'));
  await fs.mkdir(path.join(home, '.defenseclaw'), { mode: 0o700 });
  const config = loadHostConfig({ HOME: home, DEFENSECLAW_HOST: 'unit', PATH: process.env.PATH ?? '', ...env });
  return { config, home };
}

async function refusal(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `expected a typed refusal, got ${String(err)}`);
  assert.equal(err.nonRetryable, true);
  return err;
}

describe('activities/http.ts: redirects, credentials, timeouts', () => {
  it('an https→http redirect is refused (local HTTPS server, self-signed cert made with openssl)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dc-hostile-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1'].concat([
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]),
      { stdio: 'ignore' },
    );
    const plain = await listenHttp((_req, res) => res.end('plain http'));
    const tls = https.createServer({ key: await fs.readFile(key), cert: await fs.readFile(cert) }, (req, res) => {
      if (req.url === '/ok') return res.end('fine');
      if (req.url === '/to-https') {
        res.writeHead(302, { location: `https://127.0.0.1:${tlsPort}/ok` });
        return res.end();
      }
      res.writeHead(302, { location: `http://127.0.0.1:${plain.port}/asset` });
      res.end();
    });
    const tlsPort = await new Promise<number>((resolve) =>
      tls.listen(0, '127.0.0.1', () => resolve((tls.address() as AddressInfo).port)),
    );
    const previous = https.globalAgent;
    const agent = new https.Agent({ ca: await fs.readFile(cert) });
    https.globalAgent = agent;
    const { config, home } = await tempConfig({
      DEFENSECLAW_RELEASES_URL: `https://127.0.0.1:${tlsPort}`,
      DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS: `127.0.0.1:${tlsPort},127.0.0.1:${plain.port}`,
    });
    const allowedHosts = config.releases.allowedHosts;
    try {
      // Controls: TLS works, and an https→https redirect to an allowed host is followed.
      const ok = await httpRequest(config, `https://127.0.0.1:${tlsPort}/ok`, { allowedHosts });
      assert.equal(await ok.body.text(), 'fine');
      const hop = await httpRequest(config, `https://127.0.0.1:${tlsPort}/to-https`, { allowedHosts });
      assert.equal(await hop.body.text(), 'fine');
      // The downgrade, to a host that is allowed: refused for the scheme alone.
      const err = await refusal(httpRequest(config, `https://127.0.0.1:${tlsPort}/asset`, { allowedHosts }));
      assert.equal(err.type, 'UnsafeRedirect');
      assert.match(err.message, /refusing redirect from https to http:/);
      assert.equal(plain.seen.length, 0, 'the http server was never contacted');
    } finally {
      https.globalAgent = previous;
      agent.destroy();
      await closeServer(tls);
      await closeServer(plain.server);
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('a redirect loop stops after a few hops', async () => {
    const loop = await listenHttp((_req, res) => {
      res.writeHead(302, { location: '/again' });
      res.end();
    });
    const { config, home } = await tempConfig({ DEFENSECLAW_RELEASES_URL: `http://127.0.0.1:${loop.port}` });
    try {
      const err = await refusal(
        httpRequest(config, `http://127.0.0.1:${loop.port}/start`, { allowedHosts: config.releases.allowedHosts }),
      );
      assert.equal(err.type, 'UnsafeRedirect');
      assert.match(err.message, /too many redirects/);
      assert.equal(loop.seen.length, config.http.maxRedirects + 1);
      assert.ok(config.http.maxRedirects <= 5);
    } finally {
      await closeServer(loop.server);
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('a redirect target never receives the Authorization header', async () => {
    const target = await listenHttp((_req, res) => res.end('bytes'));
    const origin = await listenHttp((_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${target.port}/bytes` });
      res.end();
    });
    const { config, home } = await tempConfig({
      DEFENSECLAW_RELEASES_URL: `http://127.0.0.1:${origin.port}`,
      DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS: `127.0.0.1:${target.port}`,
    });
    try {
      const res = await httpRequest(config, `http://127.0.0.1:${origin.port}/x`, {
        allowedHosts: config.releases.allowedHosts,
        headers: { authorization: 'Bearer ghp_secretsecretsecretsecret', cookie: 'a=b' },
      });
      assert.equal(await res.body.text(), 'bytes');
      assert.equal(origin.seen[0]!.headers.authorization, 'Bearer ghp_secretsecretsecretsecret');
      assert.equal(target.seen[0]!.headers.authorization, undefined);
      assert.equal(target.seen[0]!.headers.cookie, undefined);
    } finally {
      await closeServer(origin.server);
      await closeServer(target.server);
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('every request has a timeout: a server that never answers, one that stalls mid-body', async () => {
    const silent = await listenHttp((req, res) => {
      if (req.url === '/stall') {
        res.writeHead(200, { 'content-length': '100000' });
        res.write('x'.repeat(10));
      }
      // otherwise: never answer
    });
    const { config, home } = await tempConfig({
      DEFENSECLAW_RELEASES_URL: `http://127.0.0.1:${silent.port}`,
      DEFENSECLAW_HTTP_TIMEOUT_MS: '400',
    });
    try {
      const t0 = Date.now();
      const err = await httpRequest(config, `http://127.0.0.1:${silent.port}/never`, {
        allowedHosts: config.releases.allowedHosts,
      }).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      assert.equal(err?.code, 'UND_ERR_HEADERS_TIMEOUT');
      assert.ok(Date.now() - t0 < 5000, `timed out after ${Date.now() - t0} ms`);
      const res = await httpRequest(config, `http://127.0.0.1:${silent.port}/stall`, {
        allowedHosts: config.releases.allowedHosts,
      });
      const t1 = Date.now();
      const bodyErr = await res.body.text().then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      assert.equal(bodyErr?.code, 'UND_ERR_BODY_TIMEOUT');
      assert.ok(Date.now() - t1 < 5000);
    } finally {
      await closeServer(silent.server);
      await fs.rm(home, { recursive: true, force: true });
    }
  });

  it('a download body longer than declared is cut at the declared size and refused', async () => {
    const repo = 'cisco-ai-defense/defenseclaw';
    // One answer too long with a Content-Length, one endless without any.
    const server = await listenHttp((req, res) => {
      if (req.url?.endsWith(WHEEL)) {
        res.writeHead(200, { 'content-length': '4096' });
        return res.end(Buffer.alloc(4096, 1));
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const t = setInterval(() => {
        if (!res.write(Buffer.alloc(16 * 1024, 2))) return;
      }, 1);
      res.on('close', () => clearInterval(t));
    });
    const { config, home } = await tempConfig({ DEFENSECLAW_RELEASES_URL: `http://127.0.0.1:${server.port}` });
    try {
      const { stagingId } = await createStaging(config, { runId: 'hostile-unit' });
      const staging = path.join(config.dataDir, 'staging', stagingId);
      assert.equal((await fs.stat(staging)).mode & 0o777, 0o700, 'staging is private');
      for (const [name, declared] of [
        [WHEEL, 1000],
        ['checksums.txt', 5000],
      ] as const) {
        const err = await refusal(
          downloadArtifact(config, { version: TO, stagingId, name, size: declared, verify: false }),
        );
        assert.equal(err.type, 'TooLarge');
        assert.match(err.message, new RegExp(`larger than its declared ${declared} bytes`));
        assert.deepEqual(await fs.readdir(staging), [], 'the partial download was removed');
      }
      assert.ok(server.seen.every((r) => r.url?.startsWith(`/${repo}/releases/download/${TO}/`)));
    } finally {
      await closeServer(server.server);
      await fs.rm(home, { recursive: true, force: true });
    }
  });
});
