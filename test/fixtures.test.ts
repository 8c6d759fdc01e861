/**
 * Checks of the test fixtures themselves: the wheel, the migrations, the simulated host (gateway, faults, venv) and
 * the GitHub-like release server. Run: npx tsc -p tsconfig.json; node --test dist/test/fixtures.test.js
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { Parser, type ReadEntry } from 'tar';
import {
  BUILD_WHEEL_SCRIPT,
  buildGatewayExecutable,
  buildGatewayTarball,
  buildWheel,
  buildWheelFile,
  hostPlatform,
  tarballName,
  wheelName,
} from './fixtures/host/build.js';
import { createSimHost, hasUv, pythonExecutable, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface TarListing {
  path: string;
  type: string;
  mode: number;
  size: number;
  linkpath: string;
  body: Buffer;
}

async function listTar(gz: Buffer): Promise<TarListing[]> {
  const entries: TarListing[] = [];
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        entries.push({
          path: e.path,
          type: e.type,
          mode: e.mode ?? 0,
          size: e.size ?? 0,
          linkpath: e.linkpath ?? '',
          body: Buffer.concat(chunks),
        }),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.end(gz);
  });
  return entries;
}

/** Gone, or a zombie waiting for its (re)parent to reap it. */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return !fs.existsSync('/proc/self/stat');
  }
}

async function tmpDir(prefix: string): Promise<string> {
  return fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), prefix)));
}

// ---------------------------------------------------------------------------------------------------------------

describe('the wheel', () => {
  let dir: string;
  let pipVenv: string;
  before(async () => {
    dir = await tmpDir('dc-wheel-test-');
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('is deterministic and well-formed', async () => {
    const a = await buildWheel('0.4.0');
    const file = await buildWheelFile('0.4.0');
    assert.equal(path.basename(file), 'defenseclaw-0.4.0-py3-none-any.whl');
    // A fresh build elsewhere gives the same bytes.
    const out = path.join(dir, 'rebuild');
    await execa('python3', [BUILD_WHEEL_SCRIPT, '0.4.0', out]);
    assert.equal(sha256(await fsp.readFile(path.join(out, 'defenseclaw-0.4.0-py3-none-any.whl'))), sha256(a));
    assert.notEqual(sha256(await buildWheel('0.3.0')), sha256(a));
  });

  test('installs into a fresh venv with uv', async () => {
    assert.ok(await hasUv(), 'uv is not on PATH (npm test installs it into the project cache)');
    const venv = path.join(dir, 'uv-venv');
    await execa('uv', ['venv', '--quiet', '--python', await pythonExecutable(), venv]);
    await execa('uv', [
      'pip',
      'install',
      '--quiet',
      '--python',
      `${venv}/bin/python`,
      '--reinstall',
      await buildWheelFile('0.3.1'),
    ]);
    assert.equal((await execa(`${venv}/bin/defenseclaw`, ['--version'])).stdout.trim(), 'defenseclaw 0.3.1');
    // Upgrading in place with the contract's command.
    await execa('uv', [
      'pip',
      'install',
      '--quiet',
      '--python',
      `${venv}/bin/python`,
      '--reinstall',
      await buildWheelFile('0.4.0'),
    ]);
    assert.equal((await execa(`${venv}/bin/defenseclaw`, ['--version'])).stdout.trim(), 'defenseclaw 0.4.0');
  });

  test('installs into a fresh venv with pip', async () => {
    pipVenv = path.join(dir, 'pip-venv');
    await execa(await pythonExecutable(), ['-m', 'venv', pipVenv]);
    const pip = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--force-reinstall'];
    await execa(`${pipVenv}/bin/python`, [...pip, await buildWheelFile('0.3.0')]);
    assert.equal((await execa(`${pipVenv}/bin/defenseclaw`, ['--version'])).stdout.trim(), 'defenseclaw 0.3.0');
    await execa(`${pipVenv}/bin/python`, [...pip, await buildWheelFile('0.4.0')]);
    assert.equal((await execa(`${pipVenv}/bin/defenseclaw`, ['--version'])).stdout.trim(), 'defenseclaw 0.4.0');
    const meta = await execa(`${pipVenv}/bin/python`, [
      '-c',
      "import importlib.metadata as m; print(m.version('defenseclaw'))",
    ]);
    assert.equal(meta.stdout.trim(), '0.4.0');
  });

  test('run_migrations runs in order, records the cursor, and a re-run returns 0', async () => {
    assert.ok(pipVenv, 'the pip venv test ran first');
    const data = path.join(dir, 'data');
    const oc = path.join(dir, 'openclaw');
    await fsp.mkdir(data, { recursive: true });
    await fsp.mkdir(oc, { recursive: true });
    await fsp.writeFile(path.join(data, 'config.yaml'), 'gateway:\n  api_port: 18970\n');
    await fsp.writeFile(path.join(data, 'guardrail_runtime.json'), '{"mode": "observe"}\n', { mode: 0o640 });
    await fsp.writeFile(path.join(oc, 'openclaw.json'), '{"gateway": {}}\n');
    await fsp.writeFile(
      path.join(data, '.migration_state.json'),
      '{"applied": ["0.3.0"], "applied_at": {"0.3.0": "bootstrap"}, "package_version": "0.3.0", "schema": 1}\n',
    );
    const code = 'import sys\nfrom defenseclaw.migrations import run_migrations\nprint(run_migrations(*sys.argv[1:5]))';
    const run = async (from: string, to: string) =>
      Number((await execa(`${pipVenv}/bin/python`, ['-c', code, from, to, oc, data])).stdout.trim());

    assert.equal(await run('0.3.0', '0.4.0'), 2);
    const state = JSON.parse(await fsp.readFile(path.join(data, '.migration_state.json'), 'utf8'));
    // The real cursor (migration_state.py): migration versions, when, by which package.
    assert.deepEqual(state.applied, ['0.3.0', '0.3.1', '0.4.0']);
    assert.equal(state.applied_at['0.3.0'], 'bootstrap');
    assert.match(state.applied_at['0.4.0'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(state.package_version, '0.4.0');
    assert.equal(state.schema, 1);
    assert.match(await fsp.readFile(path.join(data, 'config.yaml'), 'utf8'), /^telemetry:$/m);
    const guard = JSON.parse(await fsp.readFile(path.join(data, 'guardrail_runtime.json'), 'utf8'));
    assert.equal(guard.schema_version, 2);
    assert.equal((await fsp.stat(path.join(data, 'guardrail_runtime.json'))).mode & 0o777, 0o640, 'mode kept');
    const openclaw = JSON.parse(await fsp.readFile(path.join(oc, 'openclaw.json'), 'utf8'));
    assert.equal(openclaw.plugins.entries.defenseclaw.managed_by, 'defenseclaw');

    assert.equal(await run('0.3.0', '0.4.0'), 0, 'a re-run skips what already ran');
    assert.equal(await run('0.4.0', '0.4.0'), 0);
    const configBefore = await fsp.readFile(path.join(data, 'config.yaml'), 'utf8');
    assert.equal(await run('0.3.0', '0.4.0'), 0);
    assert.equal(await fsp.readFile(path.join(data, 'config.yaml'), 'utf8'), configBefore);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('the gateway executable and tarballs', () => {
  test('bakes the version and platform; tarballs are flat like GoReleaser: defenseclaw (0755) and the docs', async () => {
    const exe = (await buildGatewayExecutable('0.4.0', { os: 'darwin', arch: 'arm64' })).toString('utf8');
    assert.ok(exe.startsWith('#!/usr/bin/env node\n'));
    assert.match(exe, /^const VERSION = '0\.4\.0';$/m);
    assert.match(exe, /^const PLATFORM = 'darwin\/arm64';$/m);
    await assert.rejects(buildGatewayExecutable("0.4.0'; process.exit(1); '"), /invalid version/);

    const tgz = await buildGatewayTarball('0.4.0', { os: 'linux', arch: 'amd64' });
    assert.equal(sha256(tgz), sha256(await buildGatewayTarball('0.4.0', { os: 'linux', arch: 'amd64' })));
    const entries = await listTar(tgz);
    assert.deepEqual(
      entries.map((e) => [e.path, e.mode & 0o7777]),
      [
        ['defenseclaw', 0o755],
        ['LICENSE', 0o644],
        ['README.md', 0o644],
        ['CHANGELOG.md', 0o644],
      ],
    );
    const old = await listTar(await buildGatewayTarball('0.3.1', { os: 'linux', arch: 'amd64' }));
    assert.deepEqual(
      old.map((e) => e.path),
      ['defenseclaw', 'LICENSE', 'README.md'],
      'no CHANGELOG.md before 0.4.0',
    );
    assert.equal(entries[0]!.path, 'defenseclaw');
    assert.equal(entries[0]!.type, 'File');
    assert.equal(entries[0]!.mode & 0o7777, 0o755);
    assert.match(entries[0]!.body.toString('utf8'), /^const VERSION = '0\.4\.0';$/m);
    assert.notEqual(sha256(tgz), sha256(await buildGatewayTarball('0.4.0', { os: 'linux', arch: 'arm64' })));
  });

  test('malicious tarballs carry the hostile entry', async () => {
    const plat = hostPlatform();
    const kinds = {
      dotdot: (e: TarListing[]) => e.some((x) => x.path.split('/').includes('..')),
      absolute: (e: TarListing[]) => e.some((x) => x.path.startsWith('/')),
      symlink: (e: TarListing[]) => e.some((x) => x.type === 'SymbolicLink'),
      hardlink: (e: TarListing[]) => e.some((x) => x.type === 'Link'),
    } as const;
    for (const [kind, check] of Object.entries(kinds)) {
      const entries = await listTar(
        await buildGatewayTarball('0.4.0', plat, { malicious: kind as keyof typeof kinds }),
      );
      assert.ok(check(entries), `${kind}: ${JSON.stringify(entries.map((e) => [e.path, e.type]))}`);
      assert.ok(entries.some((e) => e.path === 'defenseclaw' && e.type === 'File'));
    }
    const huge = await buildGatewayTarball('0.4.0', plat, { malicious: 'huge' });
    assert.ok(huge.length < 8 * 1024 * 1024, 'the bomb is small on the wire');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('the simulated host', () => {
  let host: SimHost;
  before(async () => {
    host = await createSimHost();
  });
  after(async () => {
    await host?.cleanup();
  });

  test('is laid out by the contract, with a healthy gateway of the right version', async () => {
    assert.equal(await host.gatewayVersion(), '0.3.0');
    assert.equal(await host.venvPackageVersion(), '0.3.0');
    assert.equal(await host.cliVersion(), 'defenseclaw 0.3.0');
    assert.equal(await fsp.readlink(host.cliPath), path.join(host.dataDir, '.venv', 'bin', 'defenseclaw'));
    assert.equal((await fsp.stat(path.join(host.binDir, 'defenseclaw-gateway'))).mode & 0o777, 0o755);
    assert.equal((await fsp.stat(path.join(host.dataDir, 'device.key'))).mode & 0o777, 0o600);
    assert.deepEqual(await fsp.readFile(path.join(host.dataDir, 'device.key')), host.deviceKey);
    assert.match(
      await fsp.readFile(path.join(host.dataDir, 'config.yaml'), 'utf8'),
      new RegExp(`api_port: ${host.port}`),
    );
    assert.equal(await host.migrationState(), null, 'a 0.3.x host keeps no migration cursor, as the real 0.3.x');
    assert.equal(host.env.HOME, host.home);
    assert.equal(host.env.DEFENSECLAW_HOME, host.dataDir);
    assert.equal(host.env.PATH!.split(path.delimiter)[0], host.toolsDir);
    assert.equal(host.env.GITHUB_TOKEN, undefined);
    assert.equal(host.env.GH_TOKEN, undefined);
    // The gateway binary is exactly what the release tarball for this platform holds.
    const [entry] = await listTar(await buildGatewayTarball('0.3.0', host.platform));
    assert.deepEqual(await fsp.readFile(host.gatewayPath), entry!.body);

    const body = await host.health();
    assert.equal(body?.gateway.state, 'running');
    assert.equal(body?.guardrail?.state, 'running');
    assert.equal(body?.gateway.last_error, null);
    assert.ok(!Number.isNaN(Date.parse(body!.gateway.since)));
    assert.equal(body?.provenance?.binary_version, '0.3.0');
    assert.ok(await host.health({ token: null }), 'no Authorization header is fine');
    const wrong = await fetch(`http://127.0.0.1:${host.port}/health`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 200, 'no authentication at any real tag: a token is ignored');
    await wrong.body?.cancel();

    const snap = await host.snapshot();
    for (const key of [
      '.defenseclaw/config.yaml',
      '.defenseclaw/.env',
      '.defenseclaw/guardrail_runtime.json',
      '.defenseclaw/device.key',
      '.defenseclaw/policies/default.yaml',
      '.defenseclaw/policies/custom/strict.yaml',
      '.openclaw/openclaw.json',
      '.local/bin/defenseclaw-gateway',
    ]) {
      assert.equal(snap[key]?.type, 'file', key);
    }
    assert.equal(snap['.defenseclaw/device.key']?.sha256, sha256(host.deviceKey));
    assert.equal(snap['.local/bin/defenseclaw']?.type, 'symlink');
    assert.equal(snap['venv:defenseclaw']?.version, '0.3.0');
    assert.deepEqual(await host.snapshot(), snap, 'snapshots are stable');
  });

  test('stop is proven: the daemon is gone and status exits non-zero; start and restart work', async () => {
    assert.equal((await host.gatewayStatus()).exitCode, 0);
    const pids = await host.daemonPids();
    assert.equal(pids.length, 1);
    const stop = await host.stopGateway();
    assert.equal(stop.exitCode, 0, stop.stderr);
    assert.equal(await host.isGatewayRunning(), false);
    const status = await host.gatewayStatus();
    assert.notEqual(status.exitCode, 0);
    assert.match(status.stdout, /not reachable/);
    assert.equal(fs.existsSync(path.join(host.dataDir, 'gateway.pid')), false);
    assert.equal(await host.health(), null);
    assert.equal((await host.stopGateway()).exitCode, 0, 'stop when stopped is fine');

    assert.equal((await host.startGateway()).exitCode, 0);
    const again = await host.startGateway();
    assert.equal(again.exitCode, 0, 'a second start says so and exits 0, as the real one');
    assert.match(again.stdout, /already running/);
    assert.equal((await host.daemonPids()).length, 1, 'still one daemon');
    const watchdog = Number(fs.readFileSync(path.join(host.dataDir, 'watchdog.pid'), 'utf8'));
    assert.ok(watchdog > 0, 'start started a watchdog, which wrote watchdog.pid (a bare number)');
    const pidFile = JSON.parse(fs.readFileSync(path.join(host.dataDir, 'gateway.pid'), 'utf8'));
    assert.deepEqual(Object.keys(pidFile).sort(), ['executable', 'pid', 'start_time'], 'gateway.pid is JSON');
    const early = await host.health();
    assert.ok(early === null || early.gateway.state === 'starting' || early.gateway.state === 'running');
    await host.waitHealthy(5000);
    const restart = await host.gateway(['restart']);
    assert.equal(restart.exitCode, 0, restart.stderr);
    await host.waitHealthy(5000);
    assert.equal((await host.daemonPids()).length, 1);
  });

  test('fault: start fail', async () => {
    await host.stopGateway();
    await host.setFaults({ gateway: { '0.3.0': { start: 'fail' } } });
    const r = await host.startGateway();
    assert.equal(r.exitCode, 1);
    assert.equal(await host.isGatewayRunning(), false);
    await host.setFaults({ gateway: { '0.9.9': { start: 'fail' } } });
    assert.equal((await host.startGateway()).exitCode, 0, 'faults of other versions do not apply');
    await host.waitHealthy(5000);
  });

  test('fault: health starting / error / disabled, provenance faults (read live)', async () => {
    await host.setFaults({ gateway: { '*': { health: 'starting' } } });
    assert.equal((await host.health())?.gateway.state, 'starting');
    await assert.rejects(host.waitHealthy(400), /not healthy/);
    await host.setFaults({ gateway: { '0.3.0': { health: 'error' } } });
    const err = await host.health();
    assert.equal(err?.gateway.state, 'error');
    assert.ok(err?.gateway.last_error);
    await host.setFaults({ gateway: { '0.3.0': { health: 'disabled' } } });
    assert.equal((await host.health())?.gateway.state, 'disabled');
    await host.setFaults({ gateway: { '0.3.0': { noProvenance: true } } });
    assert.equal((await host.health())?.provenance, undefined);
    await host.setFaults({ gateway: { '0.3.0': { reportVersion: '9.9.9' } } });
    assert.equal((await host.health())?.provenance?.binary_version, '9.9.9');
    await host.setFaults({});
    assert.equal((await host.waitHealthy(2000)).provenance?.binary_version, '0.3.0');
  });

  test('fault: stop hang (stop fails, the daemon survives until a plain stop)', async () => {
    await host.setFaults({ gateway: { '0.3.0': { stop: 'hang', stopTimeoutMs: 400 } } });
    const r = await host.stopGateway();
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /did not stop/);
    assert.equal(await host.isGatewayRunning(), true);
    assert.equal((await host.gatewayStatus()).exitCode, 0);
    await host.setFaults({});
    assert.equal((await host.stopGateway()).exitCode, 0);
    assert.equal(await host.isGatewayRunning(), false);
  });

  test('fault: crash after start', async () => {
    await host.setFaults({ gateway: { '0.3.0': { start: 'crash-after-start', healthDelayMs: 200 } } });
    assert.equal((await host.startGateway()).exitCode, 0);
    await sleep(500);
    assert.equal(await host.isGatewayRunning(), false);
    assert.notEqual((await host.gatewayStatus()).exitCode, 0);
    assert.equal(await host.health(), null);
    await host.setFaults({});
    assert.equal((await host.startGateway()).exitCode, 0, 'a stale pid file does not block a start');
    await host.waitHealthy(5000);
  });

  test('fault: a 0.3.x migration raise propagates and leaves partial state; no cursor, so a re-run runs again', async () => {
    await host.setFaults({ migrations: { '0.4.0': 'raise' } });
    await assert.rejects(host.runMigrations('0.3.0', '0.4.0'), /simulated migration failure/);
    assert.equal(await host.migrationState(), null);
    assert.match(await fsp.readFile(path.join(host.dataDir, 'config.yaml'), 'utf8'), /^telemetry:$/m);
    await host.setFaults({});
    assert.equal(await host.runMigrations('0.3.0', '0.4.0'), 2);
    assert.equal(await host.runMigrations('0.3.0', '0.4.0'), 2);
  });

  test('openclaw: ok, disabled, fail, missing', async () => {
    const oc = () => execa('openclaw', ['gateway', 'restart'], { env: host.env, extendEnv: false, reject: false });
    await host.setFaults({});
    let r = await oc();
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /ok/);
    await host.setFaults({ openclaw: 'disabled' });
    r = await oc();
    assert.match(`${r.stdout}${r.stderr}`, /gateway service disabled/);
    await host.setFaults({ openclaw: 'fail' });
    assert.equal((await oc()).exitCode, 1);
    await host.setFaults({ openclaw: 'missing' });
    r = await oc();
    assert.equal(r.failed, true);
    assert.equal((r as unknown as { code?: string }).code, 'ENOENT');
    await host.setFaults({});
    assert.ok((await host.openclawCalls()).length >= 3);
  });

  test('cleanup stops every daemon and removes HOME', async () => {
    const extra = await createSimHost({ version: '0.4.0', withUv: true });
    assert.equal((await extra.health())?.provenance?.binary_version, '0.4.0');
    assert.deepEqual((await extra.migrationState())?.applied, ['0.3.0', '0.3.1', '0.4.0']);
    await extra.setFaults({ gateway: { '*': { stop: 'hang' } } });
    const pids = await extra.daemonPids();
    assert.equal(pids.length, 1);
    await extra.cleanup();
    assert.equal(fs.existsSync(extra.home), false);
    await sleep(100);
    assert.equal(await extra.isGatewayRunning(), false);
    assert.ok(processGone(pids[0]!), `daemon ${pids[0]} is gone`);
  });
});

describe('a host without uv', () => {
  let host: SimHost;
  before(async () => {
    host = await createSimHost({ withUv: false, start: false });
  });
  after(async () => {
    await host?.cleanup();
  });

  test('has a pip venv, no uv on its PATH, and the same python', async () => {
    assert.equal(host.uv, false);
    const which = await execa('sh', ['-c', 'command -v uv || echo none; command -v python3; command -v node'], {
      env: host.env,
      extendEnv: false,
    });
    const [uv, py, node] = which.stdout.split('\n');
    assert.equal(uv, 'none');
    assert.ok(py && node);
    assert.equal(await host.venvPackageVersion(), '0.3.0');
    const pip = await execa(`${host.venvDir}/bin/python`, ['-m', 'pip', '--version'], {
      env: host.env,
      extendEnv: false,
    });
    assert.match(pip.stdout, /^pip /);
    assert.equal(await host.isGatewayRunning(), false);
    assert.equal((await host.startGateway()).exitCode, 0);
    await host.waitHealthy(5000);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('the release server', () => {
  let server: ReleaseServer;
  const repoPath = '/repos/cisco-ai-defense/defenseclaw/releases';
  const api = (p: string, init: RequestInit = {}) => fetch(`${server.apiUrl}${repoPath}${p}`, init);

  before(async () => {
    server = await startReleaseServer({ prereleases: ['0.5.0-rc.1'] });
  });
  after(async () => {
    await server?.close();
  });

  test('latest, tags, list and 404', async () => {
    const latest = await api('/latest');
    assert.equal(latest.status, 200);
    assert.ok(latest.headers.get('x-ratelimit-remaining'));
    const rel = (await latest.json()) as {
      tag_name: string;
      prerelease: boolean;
      assets: Array<{ name: string; size: number; digest: string; browser_download_url: string }>;
    };
    assert.equal(rel.tag_name, '0.4.0');
    assert.equal(rel.prerelease, false);
    const names = rel.assets.map((a) => a.name).sort();
    assert.deepEqual(names, [
      'checksums.txt',
      'checksums.txt.pem',
      'checksums.txt.sig',
      'defenseclaw-0.4.0-py3-none-any.whl',
      'defenseclaw-plugin-0.4.0.tar.gz',
      'defenseclaw_0.4.0_darwin_amd64.tar.gz',
      'defenseclaw_0.4.0_darwin_amd64.tar.gz.sbom.json',
      'defenseclaw_0.4.0_darwin_arm64.tar.gz',
      'defenseclaw_0.4.0_darwin_arm64.tar.gz.sbom.json',
      'defenseclaw_0.4.0_linux_amd64.tar.gz',
      'defenseclaw_0.4.0_linux_amd64.tar.gz.sbom.json',
      'defenseclaw_0.4.0_linux_arm64.tar.gz',
      'defenseclaw_0.4.0_linux_arm64.tar.gz.sbom.json',
    ]);
    const wheel = rel.assets.find((a) => a.name === wheelName('0.4.0'))!;
    assert.equal(
      wheel.browser_download_url,
      `${server.downloadUrl}/cisco-ai-defense/defenseclaw/releases/download/0.4.0/${wheelName('0.4.0')}`,
    );
    assert.equal(wheel.digest, `sha256:${sha256(await buildWheel('0.4.0'))}`);
    assert.equal(wheel.size, (await buildWheel('0.4.0')).length);

    const tag = await api('/tags/0.3.1');
    assert.equal(tag.status, 200);
    assert.equal(((await tag.json()) as { tag_name: string }).tag_name, '0.3.1');
    const rc = (await (await api('/tags/0.5.0-rc.1')).json()) as { prerelease: boolean };
    assert.equal(rc.prerelease, true);
    const missing = await api('/tags/9.9.9');
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { message: string }).message, 'Not Found');
    const vtag = await api('/tags/v0.4.0');
    assert.equal(vtag.status, 404, 'tags are bare');
    await vtag.body?.cancel();
    const list = (await (await api('')).json()) as Array<{ tag_name: string }>;
    assert.deepEqual(
      list.map((r) => r.tag_name),
      ['0.5.0-rc.1', '0.4.0', '0.3.1', '0.3.0'],
    );
    const other = await fetch(`${server.apiUrl}/repos/someone/else/releases/latest`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
  });

  test('downloads: 302 to the second port, HEAD, Range, and checksums that match the bytes', async () => {
    const name = tarballName('0.4.0', { os: 'linux', arch: 'amd64' });
    const url = `${server.downloadUrl}/cisco-ai-defense/defenseclaw/releases/download/0.4.0/${name}`;
    server.resetLog();
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 302);
    const location = head.headers.get('location')!;
    assert.equal(new URL(location).host, `127.0.0.1:${server.assetPort}`);
    assert.notEqual(server.assetPort, server.port);
    assert.deepEqual(server.allowedHosts, [`127.0.0.1:${server.port}`, `127.0.0.1:${server.assetPort}`]);

    const good = (await server.assetBytes(name, '0.4.0'))!;
    const assetHead = await fetch(location, { method: 'HEAD' });
    assert.equal(assetHead.status, 200);
    assert.equal(assetHead.headers.get('content-length'), String(good.length));
    assert.equal(assetHead.headers.get('accept-ranges'), 'bytes');
    const etag = assetHead.headers.get('etag');
    assert.ok(etag);

    const full = await fetch(url); // follows the redirect
    assert.equal(full.status, 200);
    const bytes = Buffer.from(await full.arrayBuffer());
    assert.deepEqual(bytes, good);

    const part = await fetch(location, { headers: { range: 'bytes=100-1099' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 100-1099/${good.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), good.subarray(100, 1100));
    const rest = await fetch(location, { headers: { range: `bytes=${good.length - 10}-`, 'if-range': etag! } });
    assert.equal(rest.status, 206);
    assert.deepEqual(Buffer.from(await rest.arrayBuffer()), good.subarray(good.length - 10));
    const bad = await fetch(location, { headers: { range: `bytes=${good.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), `bytes */${good.length}`);
    await bad.body?.cancel();
    const unsigned = await fetch(location.replace(/\?.*$/, ''));
    assert.equal(unsigned.status, 403, 'the asset host wants the signed URL');
    await unsigned.body?.cancel();

    const sums = await (await fetch(url.replace(name, 'checksums.txt'))).text();
    const table = new Map(
      sums
        .trim()
        .split('\n')
        .map((l) => [l.split(/\s+/)[1]!, l.split(/\s+/)[0]!]),
    );
    assert.equal(table.size, 8, 'GoReleaser era: the 4 archives and their SBOMs');
    assert.equal(table.get(name), sha256(bytes));
    assert.equal(await server.sha256(name, '0.4.0'), sha256(bytes));
    assert.equal(table.get(wheelName('0.4.0')), undefined, 'the wheel came after GoReleaser: not listed');

    // The tarball really is the gateway of that version.
    const entries = await listTar(bytes);
    assert.deepEqual(
      entries.map((e) => e.path),
      ['defenseclaw', 'LICENSE', 'README.md', 'CHANGELOG.md'],
    );
    const dir = await tmpDir('dc-gw-');
    try {
      await fsp.writeFile(path.join(dir, 'defenseclaw'), entries[0]!.body, { mode: 0o755 });
      assert.equal(
        (await execa(path.join(dir, 'defenseclaw'), ['--version'])).stdout,
        'defenseclaw-gateway version 0.4.0 (commit=simulated, built=2025-01-01T00:00:00Z)',
      );
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }

    const missing = await fetch(url.replace('0.4.0/', '0.4.0/nope-'), { method: 'HEAD', redirect: 'manual' });
    assert.equal(missing.status, 404);
    const log = server.requests;
    assert.ok(log.some((r) => r.port === server.assetPort && r.status === 206 && r.range === 'bytes=100-1099'));
    assert.ok(log.some((r) => r.kind === 'download' && r.status === 302 && r.method === 'HEAD'));
    assert.ok(log.every((r) => !r.hasAuth));
  });

  test('rate limits, tokens, and a log without secrets', async () => {
    await server.setOptions({ rateLimit: { mode: 'github-403', resetInSeconds: 60, remainingRequests: 1 } });
    const first = await api('/latest');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-remaining'), '0');
    await first.body?.cancel();
    const limited = await api('/latest');
    assert.equal(limited.status, 403);
    assert.equal(limited.headers.get('x-ratelimit-remaining'), '0');
    const reset = Number(limited.headers.get('x-ratelimit-reset'));
    assert.ok(Math.abs(reset - (Date.now() / 1000 + 60)) < 5, `reset ${reset}`);
    assert.match(((await limited.json()) as { message: string }).message, /rate limit/);
    const authed = await api('/latest', { headers: { authorization: 'Bearer ghp_secretvalue123' } });
    assert.equal(authed.status, 200, 'a token lifts the limit');
    await authed.body?.cancel();

    await server.setOptions({ rateLimit: { mode: 'retry-after-429', resetInSeconds: 30 } });
    const r429 = await api('/latest');
    assert.equal(r429.status, 429);
    assert.equal(r429.headers.get('retry-after'), '30');
    await r429.body?.cancel();
    await server.setOptions({ rateLimit: { mode: 'github-403', resetInSeconds: 1 } });
    const blocked = await api('/latest');
    assert.equal(blocked.status, 403);
    await blocked.body?.cancel();
    await sleep(1100);
    const afterReset = await api('/latest');
    assert.equal(afterReset.status, 200, 'the limit lifts at reset');
    await afterReset.body?.cancel();

    await server.setOptions({ requireToken: 'ghp_secretvalue123' });
    const noTok = await api('/latest');
    assert.equal(noTok.status, 401);
    await noTok.body?.cancel();
    const tok = await api('/latest', { headers: { authorization: 'Bearer ghp_secretvalue123' } });
    assert.equal(tok.status, 200);
    await tok.body?.cancel();
    await server.setOptions({ requireToken: undefined });
    assert.ok(server.requests.some((r) => r.hasAuth));
    assert.ok(!JSON.stringify(server.requests).includes('secretvalue'), 'never log the token');
  });

  test('faults: 5xx, cut short, corrupt, missing, omitted checksums, hostile tarball', async () => {
    const name = tarballName('0.4.0', hostPlatform());
    const url = server.downloadUrlOf(name, '0.4.0');
    const good = (await server.assetBytes(name, '0.4.0'))!;

    await server.setOptions({ fail5xx: { path: '/releases/latest', times: 1 } });
    const f1 = await api('/latest');
    assert.equal(f1.status, 503);
    await f1.body?.cancel();
    const f2 = await api('/latest');
    assert.equal(f2.status, 200);
    await f2.body?.cancel();

    await server.setOptions({ cutShort: { name, afterBytes: 1000, times: 1 } });
    await assert.rejects(fetch(url).then((r) => r.arrayBuffer()));
    assert.deepEqual(Buffer.from(await (await fetch(url)).arrayBuffer()), good, 'only `times` requests are cut');

    await server.setOptions({ corrupt: [name] });
    const corrupted = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.equal(corrupted.length, good.length);
    assert.notEqual(sha256(corrupted), await server.sha256(name, '0.4.0'));
    await server.setOptions({ corrupt: [] });

    await server.setOptions({ missingAssets: [wheelName('0.4.0')], checksumOmit: [name], declaredSizeLie: [name] });
    const rel = (await (await api('/tags/0.4.0')).json()) as { assets: Array<{ name: string; size: number }> };
    assert.ok(!rel.assets.some((a) => a.name === wheelName('0.4.0')));
    assert.ok(rel.assets.find((a) => a.name === name)!.size < good.length);
    const gone = await fetch(server.downloadUrlOf(wheelName('0.4.0'), '0.4.0'), { method: 'HEAD' });
    assert.equal(gone.status, 404);
    const sums = await (await fetch(server.downloadUrlOf('checksums.txt', '0.4.0'))).text();
    assert.ok(!sums.split('\n').some((l) => l.endsWith(`  ${name}`)));
    assert.ok(sums.includes(`  ${name}.sbom.json\n`), 'only the named entry is left out');
    await server.setOptions({
      missingAssets: [],
      checksumOmit: [],
      declaredSizeLie: [],
      noChecksums: true,
      signed: true,
    });
    const noSums = (await (await api('/tags/0.4.0')).json()) as { assets: Array<{ name: string }> };
    assert.ok(!noSums.assets.some((a) => a.name.startsWith('checksums.txt')));
    await server.setOptions({ noChecksums: false });
    const signed = (await (await api('/tags/0.4.0')).json()) as { assets: Array<{ name: string }> };
    assert.ok(signed.assets.some((a) => a.name === 'checksums.txt.sig'));
    await server.setOptions({ signed: false, extraAssetNames: ['../evil'] });
    const extra = (await (await api('/tags/0.4.0')).json()) as { assets: Array<{ name: string }> };
    assert.ok(extra.assets.some((a) => a.name === '../evil'));
    await server.setOptions({ extraAssetNames: [] });

    await server.setOptions({ maliciousTarball: 'dotdot' });
    const hostile = Buffer.from(await (await fetch(url)).arrayBuffer());
    assert.ok((await listTar(hostile)).some((e) => e.path.includes('..')));
    const hostileSums = await (await fetch(server.downloadUrlOf('checksums.txt', '0.4.0'))).text();
    assert.ok(hostileSums.includes(`${sha256(hostile)}  ${name}`), 'checksums cover the hostile bytes');
    await server.setOptions({ maliciousTarball: undefined });

    await server.setOptions({ redirectTo: 'http://localhost:{port}' });
    const redir = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    assert.equal(new URL(redir.headers.get('location')!).host, `localhost:${server.assetPort}`);
    await server.setOptions({ redirectTo: undefined });
  });

  test('env() and the standalone entry point', async () => {
    assert.deepEqual(server.env(), {
      DEFENSECLAW_RELEASES_URL: server.apiUrl,
      DEFENSECLAW_DOWNLOAD_URL: server.downloadUrl,
      DEFENSECLAW_REPO: 'cisco-ai-defense/defenseclaw',
      DEFENSECLAW_ALLOWED_DOWNLOAD_HOSTS: server.allowedHosts.join(','),
    });
    const main = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'releases', 'main.js');
    const child = execa('node', [main, '--port', '0', '--versions', '0.3.0,0.4.0'], { reject: false });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (c: Buffer) => {
          buf += c.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
        child.once('exit', () => reject(new Error(`main.js exited: ${buf}`)));
      });
      const env = JSON.parse(line) as Record<string, string>;
      const latest = await fetch(`${env.DEFENSECLAW_RELEASES_URL}/repos/${env.DEFENSECLAW_REPO}/releases/latest`);
      assert.equal(((await latest.json()) as { tag_name: string }).tag_name, '0.4.0');
    } finally {
      child.kill('SIGTERM');
      await child;
    }
  });
});
