/**
 * The floor of `npm run bench -- idle`: a worker with nothing of ours, to measure what the Temporal
 * SDK itself costs an idle host. The same @temporalio/worker as the host worker, the SDK's default
 * Runtime and worker options, one no-op activity, and the connection the host worker makes from
 * the same environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE; no TLS, no API key in the bench).
 *
 *   TEMPORAL_ADDRESS=127.0.0.1:7233 node dist/scripts/idle-floor.js [task-queue]
 *
 * Prints `polling` once the worker runs; SIGTERM (the SDK's default shutdown signals) stops it.
 * Imports nothing from this project, on purpose.
 */
import { NativeConnection, Worker } from '@temporalio/worker';

async function main(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: process.argv[2] ?? `bench-idle-floor-${process.pid}`,
    activities: { noop: async () => undefined },
  });
  const running = worker.run();
  process.stdout.write('polling\n');
  await running;
  await connection.close();
}

main().catch((err) => {
  process.stderr.write(`idle-floor: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
