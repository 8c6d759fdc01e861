/**
 * Headless Chromium for UI tests: the system's /usr/bin/chromium through playwright-core (never a
 * browser download), with a fresh profile per launch that is removed on close.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why UI tests cannot run here, or undefined when Chromium is installed. */
export function chromiumMissing(): string | undefined {
  try {
    fs.accessSync(CHROMIUM_PATH, fs.constants.X_OK);
    return undefined;
  } catch {
    return `${CHROMIUM_PATH} is not installed (apt-get install -y chromium); the UI test needs a real browser`;
  }
}

export interface HeadlessBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh --user-data-dir (a persistent context is how Playwright takes one). */
export async function launchChromium(opts: { width?: number; height?: number } = {}): Promise<HeadlessBrowser> {
  const userDataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dcu-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: opts.width ?? 1600, height: opts.height ?? 1000 },
      timeout: 60_000,
    });
  } catch (err) {
    await fsp.rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      await fsp.rm(userDataDir, { recursive: true, force: true });
    },
  };
}
