/**
 * `npm run build` step after tsc: bundles dist/workflows/index.js into dist/workflow-bundle.cjs,
 * which workers load with `workflowBundle: { codePath }` instead of running webpack at start.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workflowsPath = path.join(dist, 'workflows', 'index.js');
const out = path.join(dist, 'workflow-bundle.cjs');

async function main(): Promise<void> {
  const t0 = performance.now();
  try {
    await fs.access(workflowsPath);
  } catch {
    await fs.rm(out, { force: true });
    throw new Error(`${path.relative(process.cwd(), workflowsPath)} not found: did tsc compile workflows/index.ts?`);
  }
  let bundle;
  try {
    bundle = await bundleWorkflowCode({
      workflowsPath,
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: (m) => process.stderr.write(`bundle-workflows: ${m}\n`),
        error: (m) => process.stderr.write(`bundle-workflows: ${m}\n`),
      },
    });
  } catch (err) {
    // Never leave a stale bundle behind a failed build: the worker would load old workflow code.
    await fs.rm(out, { force: true });
    throw err;
  }
  const tmp = `${out}.tmp-${process.pid}`;
  await fs.writeFile(tmp, bundle.code);
  await fs.rename(tmp, out);
  const kb = Math.round(Buffer.byteLength(bundle.code) / 1024);
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`bundle-workflows: wrote ${path.relative(process.cwd(), out)} (${kb} KiB) in ${s} s\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bundle-workflows: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
