/**
 * The package as a host gets it. A copy of this tree without dist/ is packed by its own lifecycle
 * (`npm pack` runs `prepack`, the build); the tarball holds what runs and nothing else; installed
 * with `npm install -g` into a fresh prefix, its `defenseclaw-upgrade` prints the version, runs
 * the demo's single-host upgrade through the local agent, and its `worker` polls as that version.
 * The platform bundle made from the same tree (`make-bundle`, a stamped version), unpacked into an
 * /opt-style root with no registry reachable, runs `worker` against a dev server, whose queue is
 * then polled by an identity that names the bundle's version; it holds this platform's Temporal
 * core bridge only.
 *
 * About 2 minutes on 2 busy cores: the build in the copy (~25 s), `npm install -g` (~15 s, from
 * the npm cache) and the upgrade (~25 s), the bundle (~35 s) and its worker (~15 s).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { WorkflowService } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import * as tar from 'tar';
import { connectTemporal } from '../client/temporal.js';
import { parseWorkerIdentity, workerIdentity } from '../worker/identity.js';
import { TOOL_VERSION } from '../worker/tool-version.js';
import { taskQueueForHost } from '../workflows/types.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { startTestEnvironment, temporalCliPath } from './helpers/temporal.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** What a checkout holds that the build and the package need (dist/ and node_modules/ excluded). */
const SOURCES = [
  ...(JSON.parse(fs.readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8')) as { include: string[] }).include,
  'deploy',
];
const TOP_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'SECURITY.md', 'LICENSE'];
/** The version stamped into the bundle (not the tree's: the worker must read the bundle's own). */
const BUNDLE_VERSION = '0.2.99';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dcu-package-'));
const tree = path.join(tmp, 'tree');
let tarball: string;
let packedFiles: string[];

before(async () => {
  await fsp.mkdir(tree);
  for (const f of TOP_FILES) await fsp.copyFile(path.join(REPO, f), path.join(tree, f));
  for (const d of SOURCES) await fsp.cp(path.join(REPO, d), path.join(tree, d), { recursive: true });
  await fsp.symlink(path.join(REPO, 'node_modules'), path.join(tree, 'node_modules'));
  // The build's own output shares stdout with `--json`: find the tarball by its name instead.
  await execa('npm', ['pack', '--pack-destination', tmp], { cwd: tree });
  tarball = path.join(tmp, `defenseclaw-upgrade-${PKG.version}.tgz`);
  packedFiles = [];
  await tar.t({ file: tarball, onReadEntry: (e) => packedFiles.push(e.path.replace(/^package\//, '')) });
});

after(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/**
 * Runs `<main> worker` (the executable itself, as its shebang says) against a Temporal server, with
 * no registry reachable, until the host's queue is polled by the identity of that very process;
 * then stops it with SIGTERM, which must exit 0.
 */
async function runWorkerUntilItPolls(
  main: string,
  o: { svc: WorkflowService; namespace: string; address: string; home: string; host: string; version: string },
): Promise<void> {
  await fsp.mkdir(o.home, { recursive: true });
  const worker = spawn(main, ['worker'], {
    cwd: o.home,
    env: {
      PATH: process.env.PATH,
      HOME: o.home,
      DEFENSECLAW_HOME: path.join(o.home, '.defenseclaw'),
      DEFENSECLAW_HOST: o.host,
      TEMPORAL_ADDRESS: o.address,
      TEMPORAL_NAMESPACE: o.namespace,
      npm_config_registry: 'http://127.0.0.1:9',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  worker.stderr.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number | null>((r) => worker.once('exit', (code) => r(code)));
  try {
    const deadline = Date.now() + 60_000;
    let seen: ReturnType<typeof parseWorkerIdentity> | undefined;
    while (!seen) {
      assert.equal(worker.exitCode, null, `the worker exited: ${stderr}`);
      assert.ok(Date.now() < deadline, `the worker polls within 60 s: ${stderr}`);
      const q = await o.svc.describeTaskQueue({
        namespace: o.namespace,
        taskQueue: { name: taskQueueForHost(o.host) },
        taskQueueType: 2, // TASK_QUEUE_TYPE_ACTIVITY
      });
      seen = (q.pollers ?? []).map((p) => parseWorkerIdentity(p.identity ?? '')).find((p) => p.pid === worker.pid);
      if (!seen) await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(seen, { version: o.version, role: 'host', host: o.host, pid: worker.pid });
    worker.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  } finally {
    if (worker.exitCode === null) worker.kill('SIGKILL');
  }
}

describe('worker identities', () => {
  it('name the version, role, host and pid; the identities before 0.2 parse without a version', () => {
    const id = workerIdentity('host', 'gw-01', 4242);
    assert.equal(id, `defenseclaw-upgrade@${TOOL_VERSION}:host:gw-01:4242`);
    assert.deepEqual(parseWorkerIdentity(id), { version: TOOL_VERSION, role: 'host', host: 'gw-01', pid: 4242 });
    assert.deepEqual(parseWorkerIdentity(workerIdentity('controller', 'ctl', 7, '1.2.3')), {
      version: '1.2.3',
      role: 'controller',
      host: 'ctl',
      pid: 7,
    });
    assert.deepEqual(parseWorkerIdentity('defenseclaw-upgrade:gw-01:99'), { role: 'host', host: 'gw-01', pid: 99 });
    assert.deepEqual(parseWorkerIdentity('defenseclaw-upgrade-agent:gw-01:99'), {
      role: 'agent',
      host: 'gw-01',
      pid: 99,
    });
    assert.deepEqual(parseWorkerIdentity('defenseclaw-upgrade-fleet:ctl:5'), {
      role: 'controller',
      host: 'ctl',
      pid: 5,
    });
    assert.deepEqual(parseWorkerIdentity('defenseclaw-upgrade-workflows:5'), { role: 'controller', pid: 5 });
    for (const other of ['12345@somehost', '', 'defenseclaw-upgrade@1.2:host:h:1', 'defenseclaw-upgrade@x:host:h:1']) {
      assert.equal(parseWorkerIdentity(other).version, undefined, other);
    }
    assert.deepEqual(parseWorkerIdentity('other-tool:h:1'), {});
  });
});

describe('the npm package', () => {
  it('holds what runs and nothing else: no test, script, source map or TypeScript source', () => {
    assert.ok(packedFiles.length > 50 && packedFiles.length < 200, `${packedFiles.length} files`);
    for (const f of [
      'package.json',
      'README.md',
      'SECURITY.md',
      'LICENSE',
      'dist/client/main.js',
      'dist/worker/agent/agent-main.js',
      'dist/workflow-bundle.cjs',
      'deploy/defenseclaw-upgrade-worker.service',
    ]) {
      assert.ok(packedFiles.includes(f), `${f} is packed`);
    }
    const unwanted = packedFiles.filter(
      (f) =>
        /\.(ts|mts|cts|map)$/.test(f) ||
        /(^|\/)(test|tests|fixtures|scripts)\//.test(f) ||
        !/^(dist|deploy)\/|^(package\.json|README\.md|SECURITY\.md|LICENSE)$/.test(f),
    );
    assert.deepEqual(unwanted, []);
  });

  it('installs with npm install -g into a fresh prefix; the installed command upgrades a host through the local agent, and runs `worker`', async (t) => {
    const prefix = path.join(tmp, 'prefix');
    const t0 = Date.now();
    await execa('npm', ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'], {
      cwd: tmp,
    });
    t.diagnostic(`npm install -g: ${Date.now() - t0} ms`);
    const bin = path.join(prefix, 'bin', 'defenseclaw-upgrade');
    const installed = path.join(prefix, 'lib', 'node_modules', 'defenseclaw-upgrade');
    assert.equal((await execa(bin, ['--tool-version'])).stdout, PKG.version);

    // No runtime file imports a devDependency, or anything outside the package's own dist/.
    const dev = Object.keys(PKG.devDependencies);
    for (const e of await fsp.readdir(path.join(installed, 'dist'), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !/\.(c?js)$/.test(e.name)) continue;
      const file = path.join(e.parentPath, e.name);
      const text = await fsp.readFile(file, 'utf8');
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        const bare = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        assert.ok(!dev.includes(bare), `${path.relative(installed, file)} imports the devDependency ${spec}`);
        // (The workflow bundle is self-contained: its relative names are webpack's, resolved inside it.)
        if (spec.startsWith('.') && e.name !== 'workflow-bundle.cjs') {
          const target = path.resolve(path.dirname(file), spec);
          assert.ok(fs.existsSync(target), `${path.relative(installed, file)} imports ${spec}, which is not packed`);
        }
      }
    }

    // The demo's single-host upgrade, with the installed command instead of the checkout's.
    const releases: ReleaseServer = await startReleaseServer();
    const host: SimHost = await createSimHost({ version: '0.3.0' });
    const env = {
      ...host.env,
      ...releases.env(),
      DEFENSECLAW_HOST: 'pkg-host',
      TEMPORAL_CLI_PATH: await temporalCliPath(),
      NO_COLOR: '1',
    };
    const cli = (args: string[]) => execa(bin, args, { env, extendEnv: false, reject: false, timeout: 240_000 });
    try {
      const up = await cli(['--yes', '--json']);
      assert.equal(up.exitCode, 0, up.stderr);
      const result = JSON.parse(up.stdout) as { outcome: string; from: string; to: string };
      assert.equal(result.outcome, 'upgraded');
      assert.equal(result.from, '0.3.0');
      assert.equal(result.to, '0.4.0');
      assert.equal(await host.gatewayVersion(), '0.4.0');

      const status = await cli(['agent', 'status', '--json']);
      assert.equal(status.exitCode, 0, status.stderr);
      const info = (JSON.parse(status.stdout) as { info: { pid: number; address?: string; upgraderVersion?: string } })
        .info;
      assert.equal(info.upgraderVersion, PKG.version);
      // The agent that ran it is the installed package's, not this checkout's.
      const cmdline = (await fsp.readFile(`/proc/${info.pid}/cmdline`, 'utf8')).split('\0');
      assert.ok(
        cmdline.includes(path.join(installed, 'dist', 'worker', 'agent', 'agent-main.js')),
        `the agent runs ${cmdline.join(' ')}`,
      );
      // `worker`, from the same install, against the agent's Temporal.
      const c = await connectTemporal({ address: info.address, useEnvConfig: false });
      try {
        await runWorkerUntilItPolls(bin, {
          svc: c.client.workflowService,
          namespace: c.namespace,
          address: info.address!,
          home: path.join(tmp, 'npm-worker-home'),
          host: 'pkg-worker',
          version: PKG.version,
        });
      } finally {
        await c.close();
      }
      const human = await cli(['agent', 'status']);
      assert.match(
        human.stdout,
        new RegExp(`^running pid ${info.pid}, upgrader ${PKG.version.replace(/\./g, '\\.')},`),
      );
    } finally {
      await cli(['agent', 'stop']);
      await host.cleanup();
      await releases.close();
    }
  });
});

describe('the platform bundle', () => {
  let env: TestWorkflowEnvironment | undefined;

  after(async () => {
    await env?.teardown();
  });

  it('installs with no registry into <root>/versions/<v>; its worker polls the host queue as that version', async (t) => {
    const out = path.join(tmp, 'bundles');
    const t0 = Date.now();
    const made = await execa(
      process.execPath,
      [path.join(tree, 'dist', 'scripts', 'make-bundle.js'), '--version', BUNDLE_VERSION, '--out', out],
      { cwd: tree },
    );
    t.diagnostic(`make-bundle: ${Date.now() - t0} ms; ${made.stdout.split('\n')[1]?.trim()}`);
    const name = `defenseclaw-upgrade-${BUNDLE_VERSION}-${process.platform}-${process.arch}.tar.gz`;
    assert.deepEqual((await fsp.readdir(out)).sort(), ['SHA256SUMS', name]);
    // As the README has it: check, unpack, link.
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
    assert.equal(check.stdout.trim(), `${name}: OK`);
    const root = path.join(tmp, 'opt', 'defenseclaw-upgrade');
    const dir = path.join(root, 'versions', BUNDLE_VERSION);
    await fsp.mkdir(dir, { recursive: true });
    await execa('tar', ['-xzf', path.join(out, name), '-C', dir, '--strip-components=1']);
    await fsp.symlink(path.join('versions', BUNDLE_VERSION), path.join(root, 'current'));
    const current = path.join(root, 'current');
    assert.deepEqual(
      (await fsp.readdir(current)).sort(),
      ['LICENSE', 'README.md', 'SECURITY.md', 'deploy', 'dist', 'node_modules', 'package.json'].sort(),
    );
    const bridge = createRequire(import.meta.url)('@temporalio/core-bridge/common.js') as {
      getPrebuiltTargetName(): string;
    };
    assert.deepEqual(await fsp.readdir(path.join(current, 'node_modules', '@temporalio', 'core-bridge', 'releases')), [
      bridge.getPrebuiltTargetName(),
    ]);
    assert.ok(!fs.existsSync(path.join(current, 'node_modules', 'typescript')), 'no devDependency');
    assert.ok(!fs.existsSync(path.join(current, 'dist', 'test')), 'no test');

    // Its worker, run as the bundle's own executable, with no registry reachable.
    env = await startTestEnvironment();
    const home = path.join(tmp, 'bundle-home');
    await fsp.mkdir(home);
    await runWorkerUntilItPolls(path.join(current, 'dist', 'client', 'main.js'), {
      svc: env.client.workflowService,
      namespace: env.namespace ?? 'default',
      address: env.address,
      home,
      host: 'bundle-host',
      version: BUNDLE_VERSION,
    });
  });
});
