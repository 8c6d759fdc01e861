/**
 * catchUpHosts: the late hosts of a ring rollout (their worker did not answer when their ring
 * ran), upgraded as soon as their worker answers, until each one's deadline (its ring's end +
 * `catchUpSeconds`), and only while the rollout has not halted. One child per rollout; the ring
 * rollout hands hosts over with a signal and waits for the result at its end.
 *
 * Probing is cheap: one checkHost activity on the host's queue that waits to be picked up
 * (schedule-to-start) 10 s, then 20 s, 40 s … up to 10 min: a worker that comes back takes it at
 * once, a dead one costs a few events per wait. Once it answers: its installed version (already on
 * the target or newer: caught up without change), else a one-host fleetRollout child
 * (`<rolloutId>.catch-up.<host>`) that upgrades it with the usual probes, busy check and rollback.
 */
import { ReleaseTicketSchema } from '../release-ticket.js';
import { ticketArgs } from './fleet-ticket.js';
import {
  CancellationScope,
  condition,
  defineSignal,
  isCancellation,
  setHandler,
  startChild,
} from '@temporalio/workflow';
import { z } from 'zod';
import { KIND, hostQueue, onHost } from '../proxies.js';
import { workflowTime } from '../clock.js';
import { componentArgs } from './fleet-component.js';
import { FLEET_LIMITS, clip, type FleetResult } from './fleet-types.js';
import { notPickedUp } from './fleet-host.js';
import type { fleetRollout } from './fleet.js';
import { RolloutEvents } from './ring-events.js';
import { RING_LIMITS, RingNameSchema, type LateHostReport } from './ring-types.js';
import { childResultOf, failureText, validateInput } from '../run.js';
import {
  HostNameSchema,
  IdSchema,
  LIMITS,
  ROLLOUT_COMPONENTS,
  TaskQueueSchema,
  VersionSchema,
  WORKFLOW_FLEET,
  compareVersions,
} from '../types.js';

const LateHostSchema = z
  .object({ host: HostNameSchema, ring: RingNameSchema, deadline: z.number().int().min(0).max(8.64e15) })
  .strict();
export type LateHost = z.infer<typeof LateHostSchema>;

const CatchUpInputSchema = z
  .object({
    rolloutId: IdSchema,
    version: VersionSchema,
    healthTimeoutSeconds: z.number().int().min(LIMITS.healthTimeoutSeconds.min).max(LIMITS.healthTimeoutSeconds.max),
    hosts: z.array(LateHostSchema).max(RING_LIMITS.hosts),
    requestedBy: IdSchema.optional(),
    /** The rollout's release ticket: a late host asks no releases API either. */
    ticket: ReleaseTicketSchema.optional(),
    /** The plan's shared task queue, if any (instead of each host's own). */
    taskQueue: TaskQueueSchema.optional(),
    /** `worker`: the rollout moves the hosts' workers (issue 18), each late host by a worker fleet. */
    component: z.enum(ROLLOUT_COMPONENTS).optional(),
  })
  .strict();
export type CatchUpInput = z.input<typeof CatchUpInputSchema>;

/** More late hosts (from a later ring). */
export const addLateHostsSignal = defineSignal<[LateHost[]]>('addLateHosts');
/** The rollout halted: start no more upgrades; stop probing. */
export const haltCatchUpSignal = defineSignal('haltCatchUp');
/** The rollout has no more rings: end once every host is caught up or past its deadline. */
export const lastRingSignal = defineSignal('lastRing');

const FIRST_WAIT_S = 10;
const LONGEST_WAIT_S = 600;

export async function catchUpHosts(raw: CatchUpInput): Promise<LateHostReport[]> {
  const input = validateInput(CatchUpInputSchema, raw);
  const events = new RolloutEvents(input.rolloutId, () => input.version);
  const reports: LateHostReport[] = [];
  const probes = new Set<CancellationScope>();
  const running: Array<Promise<void>> = [];
  let halted = false;
  let lastRing = false;

  const add = (late: LateHost[]) => {
    for (const l of late) {
      if (reports.some((r) => r.host === l.host)) continue;
      const rep: LateHostReport = { host: l.host, ring: l.ring, state: 'waiting', deadline: l.deadline };
      reports.push(rep);
      running.push(follow(rep));
    }
  };

  const follow = async (rep: LateHostReport): Promise<void> => {
    let wait = FIRST_WAIT_S;
    while (!halted) {
      const left = Math.floor((rep.deadline - workflowTime()) / 1000);
      if (left < 1) break;
      const answered = await probe(rep.host, Math.min(wait, left));
      if (answered === 'halted') break;
      if (answered) return upgrade(rep);
      wait = Math.min(wait * 2, LONGEST_WAIT_S);
    }
    rep.state = 'never-caught-up';
    rep.reason = halted
      ? 'the rollout halted before its worker answered'
      : 'its worker did not answer before the catch-up deadline';
  };

  /** true: the worker answered; false: not within `seconds`; 'halted': the rollout halted meanwhile. */
  const probe = async (host: string, seconds: number): Promise<boolean | 'halted'> => {
    const acts = onHost(hostQueue(host, input.taskQueue), KIND.lateProbe, Math.max(2, seconds));
    const scope = new CancellationScope();
    probes.add(scope);
    try {
      await scope.run(() => acts.checkHost.executeWithOptions({ summary: `is ${host}'s worker back?` }, [{ host }]));
      return true;
    } catch (err) {
      if (isCancellation(err)) return 'halted';
      if (notPickedUp(err)) return false;
      return true; // it answered (with a refusal): the upgrade reports why
    } finally {
      probes.delete(scope);
    }
  };

  const upgrade = async (rep: LateHostReport): Promise<void> => {
    if (halted) {
      rep.state = 'never-caught-up';
      rep.reason = 'the rollout halted before its upgrade started';
      return;
    }
    // DefenseClaw's installed version says nothing of a worker's (its fleet answers alreadyCurrent).
    if (!input.component && (await alreadyThere(rep))) return;
    const r = await runOne(rep.host);
    const rec = r?.hosts[0];
    if (rec?.state === 'healthy') {
      rep.state = 'caught-up';
      rep.reason = undefined;
      events.emit('host-caught-up', {
        host: rep.host,
        ring: rep.ring,
        message: `${rep.host} (ring ${rep.ring}) caught up: now on ${input.version}`,
      });
    } else {
      rep.state = 'failed';
      rep.reason = clip(`${rec?.state ?? 'failed'}: ${rec?.reason ?? r?.message ?? 'no result'}`);
    }
  };

  /** The host is back and already on the target or newer: caught up without a change. */
  const alreadyThere = async (rep: LateHostReport): Promise<boolean> => {
    const acts = onHost(hostQueue(rep.host, input.taskQueue), KIND.lateRead, FLEET_LIMITS.unreachableSeconds.default);
    try {
      const { version } = await acts.readInstalledVersion();
      if (compareVersions(version, input.version) >= 0) {
        rep.state = 'caught-up';
        rep.reason = `already on ${version}`;
        events.emit('host-caught-up', {
          host: rep.host,
          ring: rep.ring,
          message: `${rep.host} (ring ${rep.ring}) is back and already on ${version}`,
        });
        return true;
      }
    } catch {
      // the one-host rollout probes again and reports why
    }
    return false;
  };

  const runOne = async (host: string): Promise<FleetResult | undefined> => {
    try {
      const child = await startChild<typeof fleetRollout>(WORKFLOW_FLEET, {
        workflowId: `${input.rolloutId}.catch-up.${host}`,
        args: [
          {
            fleetId: `${input.rolloutId}.catch-up.${host}`,
            hosts: [host],
            version: input.version,
            canary: 0,
            batch: { count: 1 },
            maxFailures: { count: 0 },
            bakeSeconds: 0,
            healthTimeoutSeconds: input.healthTimeoutSeconds,
            controller: host,
            requestedBy: input.requestedBy,
            ...ticketArgs(input.ticket),
            ...(input.taskQueue ? { taskQueue: input.taskQueue } : {}),
            ...componentArgs(input.component),
          },
        ],
        staticSummary: `Catch up ${host} to ${input.version} (rollout ${input.rolloutId})`,
      });
      return await child.result();
    } catch (err) {
      const r = childResultOf<FleetResult>(err);
      if (r) return r;
      return { hosts: [{ host, state: 'failed', reason: failureText(err) }], message: failureText(err) } as FleetResult;
    }
  };

  setHandler(addLateHostsSignal, (late) => add(late));
  setHandler(haltCatchUpSignal, () => {
    halted = true;
    for (const s of probes) s.cancel();
  });
  setHandler(lastRingSignal, () => {
    lastRing = true;
  });

  add(input.hosts);
  // Hosts arrive by signal until the last ring; then every follower ends (caught up, failed, or past its deadline).
  await condition(() => lastRing || halted);
  let seen = 0;
  while (seen < running.length) {
    const batch = running.slice(seen);
    seen = running.length;
    await Promise.all(batch);
  }
  await events.flush();
  return reports;
}
