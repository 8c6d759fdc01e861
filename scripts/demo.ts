/**
 * The demo: a simulated DefenseClaw host on 0.3.0 in a temporary HOME, a GitHub-like release
 * server on loopback, and then the real CLI, run exactly as a user would with the environment a
 * user would set. The CLI brings up the embedded Temporal dev server and this host's worker (the
 * local agent) by itself, upgrades the host to the latest release and prints the UI link.
 *
 *   npm run demo              # upgrade, show history and the run, then clean up
 *   npm run demo -- --keep    # leave the agent, the host and the UI running to look around
 */
import { projectCacheDir } from '../worker/agent/temporal-cli.js';
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSimHost } from '../test/fixtures/host/sim-host.js';
import { startReleaseServer } from '../test/fixtures/releases/server.js';

const keep = process.argv.includes('--keep');
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'client', 'main.js');

function banner(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

async function main(): Promise<void> {
  banner('Setting up: a simulated DefenseClaw host on 0.3.0 and a release server (0.3.0, 0.3.1, 0.4.0)');
  const releases = await startReleaseServer({ throttleBytesPerSec: 64 * 1024 });
  const host = await createSimHost({ version: '0.3.0', keep });
  const env: Record<string, string> = {
    ...host.env,
    ...releases.env(),
    DEFENSECLAW_HOST: 'demo-host',
    TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH ?? '',
    // The simulated host has a HOME of its own; the Temporal CLI (and uv) stay in the user's cache,
    // downloaded once, not once per simulated home.
    DEFENSECLAW_CACHE_DIR: projectCacheDir(process.env),
  };
  if (!env.TEMPORAL_CLI_PATH) delete env.TEMPORAL_CLI_PATH;
  for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_PROFILE', 'GITHUB_TOKEN', 'GH_TOKEN']) delete env[k];
  process.stdout.write(
    `HOME=${host.home}\nDEFENSECLAW_RELEASES_URL=${releases.apiUrl}\ngateway: ${await host.gatewayVersion()} on 127.0.0.1:${host.port}\n`,
  );

  const cli = (args: string[]) =>
    execa(process.execPath, [CLI, ...args], { env, extendEnv: false, stdio: 'inherit', reject: false });

  let failed = false;
  try {
    banner('defenseclaw-upgrade --yes    (the original command surface; brings up the local agent)');
    const up = await cli(['--yes']);
    failed = up.exitCode !== 0;

    banner('What the host runs now');
    const health = await host.health();
    process.stdout.write(
      `defenseclaw-gateway --version: ${await host.gatewayVersion()}\n/health: gateway ${health?.gateway.state}, binary ${health?.provenance?.binary_version}\n` +
        `defenseclaw (CLI in the venv): ${await host.cliVersion()}\n`,
    );

    banner('defenseclaw-upgrade history');
    await cli(['history']);
    banner('defenseclaw-upgrade show defenseclaw-upgrade-demo-host');
    await cli(['show', 'defenseclaw-upgrade-demo-host']);
    banner('defenseclaw-upgrade backups');
    await cli(['backups']);
  } finally {
    if (keep) {
      banner('Left running (--keep)');
      process.stdout.write(
        `The agent, the Temporal UI and the simulated host stay up. To stop everything:\n` +
          `  HOME=${host.home} node ${CLI} agent stop\n`,
      );
    } else {
      banner('Cleaning up (run with -- --keep to look around in the Temporal UI)');
      await cli(['agent', 'stop']);
      await host.cleanup();
      await releases.close();
    }
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
