/**
 * `npm run ensure-temporal`: finds (or fetches) the Temporal CLI and prints its path on stdout.
 * Progress and failures go to stderr; exit 1 when no CLI could be found.
 */
import { findTemporalCli } from '../worker/agent/temporal-cli.js';

try {
  const cli = await findTemporalCli({ log: (line) => process.stderr.write(`ensure-temporal: ${line}\n`) });
  process.stdout.write(`${cli}\n`);
} catch (err) {
  process.stderr.write(`ensure-temporal: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
