/**
 * End to end in the Temporal Web UI: a dev server with its UI (the agent's startDevServer), a
 * real upgrade of a simulated host started by the CLI, then the run's page opened in headless
 * Chromium (the system's /usr/bin/chromium, never a download) from the link `history` prints:
 * the page shows the run, its steps by their activity summaries, and the CLI's static summary.
 * Screenshots go to test-artifacts/ (gitignored).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { execa } from 'execa';
import { NativeConnection } from '@temporalio/worker';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { startDevServer, type DevServer } from '../worker/agent/dev-server.js';
import { loadHostConfig } from '../worker/host-config.js';
import { createHostWorker, createWorkflowWorker } from '../worker/worker.js';
import { installRuntime } from '../worker/runtime.js';
import { FLEET_TASK_QUEUE } from '../workflows/fleet/fleet-types.js';
import { hostWorkflowId } from '../workflows/types.js';
import { hostPlatform, tarballName } from './fixtures/host/build.js';
import { createSimHost, type SimHost } from './fixtures/host/sim-host.js';
import { startReleaseServer, type ReleaseServer } from './fixtures/releases/server.js';
import { chromiumMissing, launchChromium, type HeadlessBrowser } from './helpers/chromium.js';
import { temporalCliPath } from './helpers/temporal.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '..', 'client', 'main.js');
const ARTIFACTS = path.resolve(HERE, '..', '..', 'test-artifacts');

installRuntime({ level: 'WARN' });

/** Waits (bounded) until a locator's text contains `text`; answers that text. */
async function waitForText(locator: Locator, text: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = await locator
      .innerText({ timeout: 5_000 })
      .catch(() => last)
      .then((t) => t.replace(/\s+/g, ' '));
    if (last.includes(text)) return last;
    if (Date.now() > deadline)
      assert.fail(`"${text}" did not appear within ${timeoutMs / 1000} s; text: ${last.slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The text of a rendered user-metadata frame (the UI renders summary and details as markdown in iframes). */
function metadataFrame(page: Page, id: 'summary' | 'details'): FrameLocator {
  return page.frameLocator(`#user-metadata-${id}`);
}

describe('Temporal UI', { timeout: 300_000 }, () => {
  it('shows an upgrade run: its static summary and every step by its activity summary', async () => {
    // A missing browser fails the test (with what to install), as every other missing prerequisite does.
    const missing = chromiumMissing();
    assert.equal(
      missing,
      undefined,
      `the Temporal UI test needs Debian's chromium (apt-get install chromium): ${missing}`,
    );
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-ui-'));
    let server: DevServer | undefined;
    let releases: ReleaseServer | undefined;
    let sim: SimHost | undefined;
    let connection: NativeConnection | undefined;
    let browser: HeadlessBrowser | undefined;
    let stopWorker: (() => Promise<void>) | undefined;
    try {
      const cliPath = await temporalCliPath();
      [server, releases, sim] = await Promise.all([
        startDevServer({ cliPath, dbFile: path.join(tmp, 'temporal.db'), ui: true }),
        startReleaseServer(),
        createSimHost(),
      ]);
      assert.ok(server.uiUrl, 'the dev server serves its UI');
      const name = `ui-${process.pid}`;
      const config = loadHostConfig({ ...sim.env, ...releases.env(), DEFENSECLAW_HOST: name });
      connection = await NativeConnection.connect({ address: server.address });
      const worker = await createHostWorker({
        connection,
        namespace: server.namespace,
        hostConfig: config,
        shutdownGraceTime: '1s',
      });
      // The controller's workflow worker: where the CLI starts a run on a cluster.
      const controller = await createWorkflowWorker({
        connection,
        namespace: server.namespace,
        taskQueue: FLEET_TASK_QUEUE,
        shutdownGraceTime: '1s',
      });
      const running = Promise.all([worker.run(), controller.run()]);
      stopWorker = async () => {
        for (const w of [worker, controller]) if (w.getState() === 'RUNNING') w.shutdown();
        await running.catch(() => undefined);
      };

      // The upgrade, as a user starts it (the CLI sets the static summary and details).
      const env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmp,
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_NAMESPACE: server.namespace,
        TEMPORAL_UI_URL: server.uiUrl,
      };
      const up = await execa(process.execPath, [CLI, 'upgrade', '--yes', '--json', '--host', name], {
        env,
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
        timeout: 180_000,
      });
      assert.equal(up.exitCode, 0, `upgrade: ${up.stderr}\n${up.stdout}`);
      assert.equal((JSON.parse(up.stdout) as { outcome: string }).outcome, 'upgraded');
      const hist = await execa(process.execPath, [CLI, 'history', '--json', '--host', name], {
        env,
        extendEnv: false,
        stdin: 'ignore',
        timeout: 60_000,
      });
      const [row] = JSON.parse(hist.stdout) as Array<{ workflowId: string; runId: string; ui: string }>;
      assert.ok(row, 'history lists the run');
      const workflowId = hostWorkflowId(name);
      assert.equal(row.ui, `${server.uiUrl}/namespaces/default/workflows/${workflowId}/${row.runId}/history`);

      // The run's page, from the link the CLI printed.
      browser = await launchChromium({ width: 1600, height: 1000 });
      const { page } = browser;
      await page.goto(row.ui, { waitUntil: 'domcontentloaded', timeout: 60_000 });
      await waitForText(page.getByTestId('workflow-id-heading'), workflowId);
      await waitForText(page.locator('body'), 'COMPLETED');
      await waitForText(page.locator('body'), row.runId);

      // The compact view groups each activity's events into one row with its summary and attempt.
      await page.getByRole('button', { name: 'Compact' }).click({ timeout: 30_000 });
      const rows = page.getByTestId('event-summary-row');
      const download = `download ${tarballName('0.4.0', hostPlatform())}`;
      const steps = [
        `check the run is for host ${name}`,
        'resolve release latest',
        download,
        'stop gateway (proven stopped)',
        'install defenseclaw-gateway 0.4.0',
        'run migrations 0.3.0 → 0.4.0',
        'start gateway',
        'wait for /health running on 0.4.0',
      ];
      for (const step of steps) {
        const r = rows.filter({ hasText: step }).first();
        await r.waitFor({ state: 'visible', timeout: 60_000 });
        await waitForText(r, 'Summary', 10_000);
      }
      const shown = await rows.count();
      assert.ok(shown >= 20, `one compact row per activity (saw ${shown})`);
      await fs.mkdir(ARTIFACTS, { recursive: true });
      // The UI scrolls inside its own pane: a tall viewport puts the header and all the steps in one picture.
      await page.setViewportSize({ width: 1600, height: 1560 });
      await rows
        .filter({ hasText: `check the run is for host ${name}` })
        .first()
        .scrollIntoViewIfNeeded();
      const shot = path.join(ARTIFACTS, 'ui-upgrade.png');
      await page.screenshot({ path: shot });
      assert.ok((await fs.stat(shot)).size > 10_000, 'a screenshot was written');

      // The static summary and details the CLI set, in the User Metadata tab.
      await page.setViewportSize({ width: 1600, height: 1000 });
      await page.getByTestId('user-metadata-tab').click({ timeout: 30_000 });
      await waitForText(metadataFrame(page, 'summary').locator('body'), `Upgrade ${name} to the latest release`);
      const details = await waitForText(metadataFrame(page, 'details').locator('body'), `Host: ${name}`);
      assert.match(details, /Requested by: \S+@\S+/);
      assert.match(details, /Confirmation: skipped \(--yes\)/, 'markdown keeps the flag as code');
      // The workflow's current details (setCurrentDetails), read by the UI through the running worker.
      await waitForText(
        page.frameLocator('#user-metadata-current-details').locator('body'),
        `upgrade ${name}: upgraded`,
      );
      await page.screenshot({ path: path.join(ARTIFACTS, 'ui-upgrade-metadata.png'), fullPage: false });
    } finally {
      await browser?.close();
      await stopWorker?.();
      await connection?.close().catch(() => undefined);
      await server?.stop();
      await releases?.close();
      await sim?.cleanup();
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
