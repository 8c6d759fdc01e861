/**
 * The CLI as a user runs it: `node dist/client/main.js` with a user's environment. Bad input is a
 * one-line error with exit 2 before anything is contacted; a real upgrade goes through the local
 * agent (embedded dev server + worker) that the CLI starts by itself; killing the CLI does not
 * stop the upgrade, and running it again attaches instead of starting a second workflow.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { runCli } from './helpers/cli.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<Run> {
  return runCli(args, env, timeoutMs);
}

let releases: ReleaseServer;
let host: SimHost;
let env: Record<string, string>;

before(async () => {
  // Slow downloads (about 9 s per upgrade) keep the first upgrade running while a second CLI attaches.
  releases = await startReleaseServer({ throttleBytesPerSec: 1024 });
  host = await createSimHost({ version: '0.3.0' });
  env = { ...host.env, ...releases.env(), DEFENSECLAW_HOST: 'cli-host', NO_COLOR: '1' };
  if (process.env.TEMPORAL_CLI_PATH) env.TEMPORAL_CLI_PATH = process.env.TEMPORAL_CLI_PATH;
});

after(async () => {
  await cli(['agent', 'stop'], env).catch(() => undefined);
  await host?.cleanup();
  await releases?.close();
});

describe('bad input: one line, exit 2, nothing contacted, nothing started', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['short version', ['--yes', '--version', '1.2'], /invalid --version "1\.2": expected MAJOR\.MINOR\.PATCH/],
    ['prerelease', ['--yes', '--version', '1.2.3-rc1'], /invalid --version/],
    ['path', ['--yes', '--version', '../1.2.3'], /invalid --version/],
    ['shell', ['--yes', '--version', '1.2.3;rm -rf'], /invalid --version/],
    ['health timeout word', ['--yes', '--health-timeout', 'soon'], /--health-timeout must be a whole number/],
    [
      'health timeout too large',
      ['--yes', '--health-timeout', '1000000000'],
      /--health-timeout must be from 1 to 3600 seconds, got 1000000000/,
    ],
    ['policy', ['--yes', '--on-failure', 'explode'], /on-failure/],
    ['unknown flag', ['--yes', '--frobnicate'], /unknown option '--frobnicate'/],
    ['no terminal, no --yes', [], /pass --yes/],
    ['rollback outside backups', ['rollback', '--yes', '--backup', '/etc'], /--backup must be a folder inside/],
    ['rollback dot-dot', ['rollback', '--yes', '--backup', '../..'], /--backup must be a folder inside/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      releases.resetLog();
      const r = await cli(args, env);
      assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('(run with --help'));
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      assert.match(lines[0]!, message);
      assert.equal(releases.requests.length, 0, 'no request reached the release server');
      await assert.rejects(fs.stat(path.join(host.dataDir, 'agent', 'agent.pid')), 'no agent was started');
    });
  }

  it('an unreachable TEMPORAL_ADDRESS is one line naming the fix, exit 1', async () => {
    const r = await cli(['--yes'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr.trim(),
      /^defenseclaw-upgrade: cannot reach Temporal at 127\.0\.0\.1:1: .*check TEMPORAL_ADDRESS$/,
    );
  });

  it('every command has --help', async () => {
    for (const c of [
      [],
      ['upgrade'],
      ['status'],
      ['cancel'],
      ['rollback'],
      ['backups'],
      ['history'],
      ['show'],
      ['agent'],
      ['agent', 'start'],
      ['worker'],
      ['fleet'],
    ]) {
      const r = await cli([...c, '--help'], env);
      assert.equal(r.code, 0, `${c.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /Usage: defenseclaw-upgrade/);
    }
  });
});

describe('a real upgrade through the local agent', () => {
  it('killing the CLI does not stop the upgrade; a second upgrade attaches; status reports the end', async () => {
    // Start an upgrade and kill the CLI once the run is under way (downloads are throttled).
    const first = spawn(process.execPath, [CLI, '--yes', '--version', '0.3.1'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    first.stderr.on('data', (d) => (err += String(d)));
    const deadline = Date.now() + 90_000;
    while (!err.includes('Temporal UI:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(
      err,
      /Temporal UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/defenseclaw-upgrade-cli-host/,
    );
    first.kill('SIGKILL');

    // The same command again attaches to the running workflow and reports its end.
    const second = await cli(['--yes', '--version', '0.3.1', '--json'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /An upgrade of cli-host is already running; attaching to it/);
    const result = JSON.parse(second.stdout);
    assert.equal(result.outcome, 'upgraded');
    assert.equal(result.to, '0.3.1');
    assert.equal(await host.gatewayVersion(), '0.3.1');

    // Exactly one upgrade workflow ran for this host.
    const hist = await cli(['history', '--host', 'cli-host', '--json'], env);
    assert.equal(hist.code, 0, hist.stderr);
    const rows = JSON.parse(hist.stdout) as Array<{ outcome: string; to: string }>;
    assert.equal(rows.length, 1, hist.stdout);
    assert.equal(rows[0]!.outcome, 'upgraded');

    const status = await cli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).outcome, 'upgraded');

    // Already current: exit 0 with a message, nothing touched.
    const again = await cli(['--yes', '--version', '0.3.1'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /ALREADY-CURRENT .*already runs DefenseClaw 0\.3\.1/);
    assert.ok(!(again.stdout + again.stderr).includes('\u001b['), 'no colours with NO_COLOR');
  });

  it('backups lists the upgrade backup; rollback --yes restores it', async () => {
    const list = await cli(['backups', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const backups = JSON.parse(list.stdout) as Array<{ id: string; valid: boolean; fromVersion: string }>;
    assert.equal(backups.length, 1);
    assert.equal(backups[0]!.valid, true);
    assert.equal(backups[0]!.fromVersion, '0.3.0');
    const rb = await cli(['rollback', '--yes', '--json'], env);
    assert.equal(rb.code, 0, rb.stderr);
    assert.equal(JSON.parse(rb.stdout).outcome, 'restored');
    assert.equal(await host.gatewayVersion(), '0.3.0');
    assert.equal(await host.venvPackageVersion(), '0.3.0');
  });
});
