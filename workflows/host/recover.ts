/**
 * What happens after a failure (or a cancel) once the gateway was stopped, shared by the
 * upgrade and the rollback workflows.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { compensating, quick } from '../proxies.js';
import { HostRun, failureText } from '../run.js';
import { Saga } from './saga.js';
import type { OnFailure } from '../types.js';

/**
 * After a failure (or a cancel) inside the downtime window, per the failure policy:
 * - rollback: undo every step in reverse, start the previous gateway, prove it healthy;
 *   if any of that fails, stop the gateway (fail closed) and say exactly where the host is.
 * - restart: the original command's behaviour: start whatever is installed.
 * - stop: leave the gateway stopped for inspection.
 */
export async function recover(
  run: HostRun,
  err: unknown,
  undo: Saga,
  policy: OnFailure,
  healthTimeoutSeconds: number,
  /** The version to roll back to (default: the run's), and whether `reconnecting` counts as healthy. */
  opts: { from?: string; acceptReconnecting?: boolean } = {},
): Promise<ReturnType<HostRun['result']>> {
  const cancelled = isCancellation(err);
  const failedStep = run.steps.filter((s) => s.status === 'failed').pop()?.name ?? (cancelled ? 'cancel' : 'unknown');
  const failure = { step: failedStep, error: cancelled ? 'cancelled by an operator' : failureText(err) };
  const backup = `backups/${run.backupId}`;
  run.phase = 'compensating';
  const from = opts.from ?? run.from!;
  const health = { timeoutSeconds: healthTimeoutSeconds, acceptReconnecting: opts.acceptReconnecting };

  const outcome = await CancellationScope.nonCancellable(async () => {
    if (failedStep === 'stop' && undo.size === 0) {
      // The stop itself was not proven: nothing was replaced; make sure the old gateway serves.
      const healthy = await startAndCheck(run, from, health);
      if (healthy) {
        return run.result(
          'failed-unchanged',
          `the gateway could not be stopped (${failure.error}); nothing was replaced and ${from} still serves.`,
          { failure },
        );
      }
    }
    if (policy === 'stop' && !cancelled) {
      await run.step('rollback', 'stop gateway for inspection', (o) =>
        compensating.stopGateway.executeWithOptions(o, []),
      );
      return run.result(
        'stopped',
        `upgrade failed at ${failedStep} (${failure.error}); the gateway is stopped for inspection as asked. Backup: ${backup}.`,
        { failure },
      );
    }
    if (policy === 'restart' && !cancelled) {
      const ok = await restartAndCheck(run, undefined, health);
      return run.result(
        'restarted',
        `upgrade failed at ${failedStep} (${failure.error}); the gateway was restarted as installed (${ok ? 'healthy' : 'NOT healthy'}). Backup: ${backup}.`,
        { failure },
      );
    }
    const problems = await undo.compensate();
    for (const p of problems) run.skip('rollback', `FAILED: ${p.name}: ${failureText(p.error)}`);
    const healthy = problems.length === 0 && (await restartAndCheck(run, from, health));
    if (healthy) {
      return run.result(
        'rolled-back',
        `upgrade of ${run.host} to ${run.to} ${cancelled ? 'was cancelled' : `failed at ${failedStep} (${failure.error})`}; rolled back to ${from}, healthy, files identical to ${backup}.`,
        {
          failure,
          compensation: { steps: run.steps.filter((s) => s.name === 'rollback'), hostState: `running ${from}` },
        },
      );
    }
    // Fail closed: a security gateway in an unknown state must not keep running.
    await run
      .step('rollback', 'fail closed: stop gateway', (o) => compensating.stopGateway.executeWithOptions(o, []))
      .catch(() => undefined);
    const hostState = `gateway STOPPED; the rollback to ${from} did not complete${problems.length ? ` (${problems.map((p) => p.name).join('; ')} failed)` : ' (it did not become healthy)'}; restore by hand from ${backup} (defenseclaw-gateway.previous, files/)`;
    return run.result(
      'rollback-failed',
      `upgrade failed at ${failedStep} (${failure.error}) and the rollback failed: ${hostState}.`,
      {
        failure,
        compensation: { steps: run.steps.filter((s) => s.name === 'rollback'), hostState },
      },
    );
  });
  if (cancelled) throw err;
  return outcome;
}

/** Stops, starts the gateway and waits for health (of `version`, when given); true when healthy. */
type HealthRule = { timeoutSeconds: number; acceptReconnecting?: boolean };

async function restartAndCheck(run: HostRun, version: string | undefined, health: HealthRule): Promise<boolean> {
  try {
    await run.step('rollback', 'stop gateway', (o) => compensating.stopGateway.executeWithOptions(o, []));
  } catch {
    return false;
  }
  return startAndCheck(run, version, health);
}

/** Starts the gateway (a no-op when it runs) and waits for health; true when healthy. */
async function startAndCheck(run: HostRun, version: string | undefined, health: HealthRule): Promise<boolean> {
  try {
    await run.step('rollback', `start gateway${version ? ` ${version}` : ''}`, (o) =>
      compensating.startGateway.executeWithOptions(o, [{ healthTimeoutSeconds: health.timeoutSeconds }]),
    );
    await run.step('rollback', `wait for /health running${version ? ` on ${version}` : ''}`, (o) =>
      compensating.waitHealthy.executeWithOptions(o, [
        {
          version,
          timeoutSeconds: health.timeoutSeconds,
          ...(health.acceptReconnecting !== undefined ? { acceptReconnecting: health.acceptReconnecting } : {}),
        },
      ]),
    );
    return true;
  } catch {
    return false;
  }
}

export async function discardVenv(venvId: string | undefined): Promise<void> {
  if (!venvId) return;
  await CancellationScope.nonCancellable(() =>
    quick.discardVenv.executeWithOptions({ summary: 'discard prepared Python environment' }, [{ venvId }]),
  );
}
