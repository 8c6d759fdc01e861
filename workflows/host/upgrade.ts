/**
 * upgradeHost: one DefenseClaw host from its installed version to a release, as a runbook.
 *
 *   resolve → route → platform                                      (what to install, in how many hops)
 *   per hop (hop.ts):
 *     pre-flight → download → verify → stage                        (nothing live changes)
 *     → confirm (first hop) → backup
 *     → stop → install → migrate → start → health                   (the downtime window)
 *
 * A release that requires a bridge (0.8.5+ need 0.8.4 installed first) becomes a chain of hops,
 * shown in the plan before anything changes; each hop is a complete upgrade with its own backup,
 * health check and rollback. Anything that fails before a stop leaves the host as that hop found it.
 * Anything that fails after it is compensated according to `onFailure` (default: roll back to the
 * hop's backup and prove the old gateway healthy again; if that fails too, leave it stopped).
 */
import { ApplicationFailure, CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { NOT_REGISTERED, notRegistered } from './older-worker.js';
import type { ResolvedRelease } from '../../activities/releases.js';
import { network, quick, routeActivitiesTo } from '../proxies.js';
import { upgradeHop, type Hop, type HopState } from './hop.js';
import { DEFENSECLAW_RECORDS, closeRecords } from './records.js';
import { discardVenv as discard } from './recover.js';
import { routeTo } from '../release-layout.js';
import { RELEASE_TICKET, ticketRelease, type ReleaseTicket } from '../release-ticket.js';
import { HostRun, failureText, validateInput } from '../run.js';
import { UpgradeInputSchema, compareVersions, type UpgradeInput, type UpgradeResult } from '../types.js';

export async function upgradeHost(rawInput: UpgradeInput): Promise<UpgradeResult> {
  const input = validateInput(UpgradeInputSchema, rawInput);
  const { host } = input;
  routeActivitiesTo(input.hostQueue);
  const run = new HostRun('upgrade', host, input.fleetId);
  const state: HopState = { stagingIds: [], stopped: false };
  // DefenseClaw's own upgrade records (issue 20): runs recorded before them replay without.
  if (patched(DEFENSECLAW_RECORDS)) state.records = { recorded: [] };
  let route: Hop[] = [];
  let done = 0;
  try {
    // 1. Resolve the target and read what is installed.
    run.phase = 'preparing';
    await run.step('resolve', `check the run is for host ${host}`, (o) =>
      quick.checkHost.executeWithOptions(o, [{ host }]),
    );
    // A rollout's ticket (issue 14): the release as the fleet resolved it, read with no API call.
    const ticket = input.ticket && patched(RELEASE_TICKET) ? input.ticket : undefined;
    const release = await resolveStep(run, ticket, input.version);
    const installed = await run.step('resolve', 'read installed gateway version', (o) =>
      quick.readInstalledVersion.executeWithOptions(o, []),
    );
    const from = installed.version;
    const to = release.version;
    run.setVersions(from, to);
    if (compareVersions(from, to) === 0) {
      return run.finish(run.result('already-current', `${host} already runs DefenseClaw ${to}; nothing to do.`));
    }
    if (compareVersions(from, to) > 0) {
      throw ApplicationFailure.nonRetryable(
        `refusing to downgrade ${host} from ${from} to ${to}; use \`defenseclaw-upgrade rollback\``,
        'DowngradeRefused',
      );
    }

    // 2. The route: directly, or through the bridge release the target requires.
    route = await planRoute(run, from, release, ticket);

    // 3. Platform.
    const platform = await run.step('platform', 'detect platform', (o) =>
      quick.detectPlatform.executeWithOptions(o, []),
    );

    // 4. Every hop, a complete upgrade.
    for (let index = 0; index < route.length; index++) {
      const ended = await upgradeHop(run, { input, route, index, platform, state });
      if (ended) return run.finish(ended);
      done++;
    }
    const chain =
      route.length > 1
        ? ` through ${route
            .slice(0, -1)
            .map((h) => `${h.to} (bridge)`)
            .join(', ')}`
        : '';
    const warn = run.warnings.length ? ` Warning: ${run.warnings.join('; ')}.` : '';
    return run.finish(
      run.result(
        'upgraded',
        `${host} upgraded from ${from} to ${to}${chain}; gateway healthy. Backup: backups/${run.backupId}.${warn}`,
        state.records?.recorded.length ? { defenseclawReceipts: state.records.recorded } : {},
      ),
    );
  } catch (err) {
    if (state.stopped) throw err; // recover() has already compensated and described it
    // Before the stop: nothing live was changed by this hop.
    await discard(state.venvId);
    if (isCancellation(err)) {
      run.result('cancelled', `upgrade of ${host} cancelled before the gateway was stopped; nothing was changed.`);
      throw err;
    }
    const step = run.steps.filter((s) => s.status === 'failed').pop()?.name ?? 'resolve';
    const target = run.to ?? input.version ?? 'the latest release';
    if (done > 0) {
      const on = route[done - 1]!.to;
      return run.finish(
        run.result(
          'partial',
          `upgrade of ${host} to ${target} stopped at hop ${done + 1} of ${route.length} (${route[done]!.from} → ${route[done]!.to}), failing at ${step} before the gateway was stopped: ${failureText(err)}. The host runs ${on}, healthy (backup of the last hop: backups/${run.backupId}).`,
          { failure: { step, error: failureText(err) } },
        ),
      );
    }
    return run.finish(
      run.result(
        'failed-unchanged',
        `upgrade of ${host} to ${target} failed at ${step} before the gateway was stopped; nothing was changed: ${failureText(err)}`,
        { failure: { step, error: failureText(err) } },
      ),
    );
  } finally {
    if (state.records) {
      const records = state.records;
      await CancellationScope.nonCancellable(() => closeRecords(run, records));
    }
    for (const stagingId of state.stagingIds) {
      await CancellationScope.nonCancellable(() =>
        quick.removeStaging.executeWithOptions({ summary: 'remove staging folder' }, [{ stagingId }]),
      );
    }
  }
}

/**
 * The resolve step: through the releases API, or, given the rollout's ticket, from the host's own
 * source with no API call (the release `version`, or the bridge that `bridgeFor` requires).
 */
async function resolveStep(
  run: HostRun,
  ticket: ReleaseTicket | undefined,
  version: string | undefined,
  bridgeFor?: string,
): Promise<ResolvedRelease> {
  const what = bridgeFor ? `bridge release ${version} (required by ${bridgeFor})` : `release ${version ?? 'latest'}`;
  if (!ticket) {
    return run.step('resolve', `resolve ${what}`, (o) => network.resolveRelease.executeWithOptions(o, [{ version }]));
  }
  const release = version === undefined ? undefined : ticketRelease(ticket, version);
  if (!release) {
    throw ApplicationFailure.nonRetryable(
      `the rollout's release ticket does not carry ${what}; refusing rather than asking the releases API`,
      'RouteRefused',
    );
  }
  try {
    return await run.step('resolve', `${what} from the rollout's ticket (no API call)`, (o) =>
      network.resolveFromTicket.executeWithOptions({ ...o, retry: { nonRetryableErrorTypes: [NOT_REGISTERED] } }, [
        { release },
      ]),
    );
  } catch (err) {
    if (!notRegistered(err)) throw err;
    // A host worker of an earlier release (host workers are upgraded whenever): it resolves as it
    // always did, through the releases API, with the same checks.
    run.amendLastStep(
      () => `${what} from the rollout's ticket: SKIPPED, this host's worker predates release tickets`,
      true,
    );
    run.warnings.push(`this host's worker predates release tickets: it asked the releases API itself`);
    return run.step('resolve', `resolve ${what} (this host's worker predates release tickets)`, (o) =>
      network.resolveRelease.executeWithOptions(o, [{ version }]),
    );
  }
}

/**
 * The hops from `from` to the release: one, or the bridge the release's manifest requires first
 * (resolved and checked the same way). Refuses a source the release (or its bridge) cannot take.
 */
async function planRoute(
  run: HostRun,
  from: string,
  release: ResolvedRelease,
  ticket: ReleaseTicket | undefined,
): Promise<Hop[]> {
  const to = release.version;
  const layout = release.layout;
  if (!layout) return [{ from, to, release, bridge: false }]; // a run recorded before release eras
  const direct = routeTo(from, layout);
  if ('refused' in direct) throw ApplicationFailure.nonRetryable(direct.refused, 'RouteRefused');
  if (!direct.bridge) return [{ from, to, release, bridge: false }];
  const bridgeVersion = direct.bridge;
  const bridge = await resolveStep(run, ticket, bridgeVersion, to);
  const first = bridge.layout ? routeTo(from, bridge.layout) : {};
  if ('refused' in first) throw ApplicationFailure.nonRetryable(first.refused, 'RouteRefused');
  if (first.bridge) {
    throw ApplicationFailure.nonRetryable(
      `DefenseClaw ${to} needs ${bridgeVersion} first, which itself needs ${first.bridge}: upgrade to ${first.bridge} first`,
      'RouteRefused',
    );
  }
  const second = routeTo(bridgeVersion, layout);
  if ('refused' in second || second.bridge) {
    throw ApplicationFailure.nonRetryable(
      `DefenseClaw ${to} does not accept its own bridge ${bridgeVersion}; refusing the release`,
      'RouteRefused',
    );
  }
  return [
    { from, to: bridgeVersion, release: bridge, bridge: true },
    { from: bridgeVersion, to, release, bridge: false },
  ];
}
