/**
 * A real Temporal cluster (PostgreSQL + temporal-server, as docker-compose.yml runs it) on this
 * machine, for a developer and for `npm test`:
 *
 *   node dist/scripts/cluster.js ensure   build (once) and check what the cluster tests need
 *   node dist/scripts/cluster.js [--tls]  start a cluster, print the environment to use it, wait for Ctrl-C
 *
 * See test/helpers/cluster.ts.
 */
import { ensureServerBinaries, findPostgresBin, serverCacheDir, startCluster } from '../test/helpers/cluster.js';

const args = process.argv.slice(2);
const usage = 'usage: node dist/scripts/cluster.js [ensure | --tls]';

async function main(): Promise<number> {
  if (args.some((a) => !['ensure', '--tls'].includes(a)) || (args.includes('ensure') && args.length > 1)) {
    process.stderr.write(`cluster: ${usage}\n`);
    return 2;
  }
  const log = (l: string) => process.stderr.write(`cluster: ${l}\n`);
  if (args[0] === 'ensure') {
    const pg = await findPostgresBin();
    const bins = await ensureServerBinaries({ log });
    log(
      `PostgreSQL in ${pg}; Temporal server in ${serverCacheDir()} (${bins.built ? `built in ${Math.round(bins.ms / 1000)} s` : 'cached'})`,
    );
    return 0;
  }
  const cluster = await startCluster({ tls: args.includes('--tls'), log });
  process.stdout.write(
    `${Object.entries(cluster.env)
      .map(([k, v]) => `export ${k}=${v}`)
      .join('\n')}\n# Ctrl-C stops the cluster and deletes ${cluster.dir}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await cluster.teardown();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cluster: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    process.exit(1);
  },
);
