/**
 * probeRing: the installed version of each host of a ring, read by each host's own worker
 * (readInstalledVersion on its queue), at most PARALLEL at a time. A host whose worker does not
 * pick the probe up within `unreachableSeconds` is reported unreachable (late, for the catch-up).
 * A child of ringRollout per ring, so the parent's history stays small.
 */
import { z } from 'zod';
import { KIND, hostQueue, onHost } from '../proxies.js';
import { clip } from './fleet-types.js';
import { notPickedUp } from './fleet-host.js';
import { RING_LIMITS, UnreachableSecondsSchema } from './ring-types.js';
import { failureText, validateInput } from '../run.js';
import { HostNameSchema, TaskQueueSchema } from '../types.js';

const PARALLEL = 50;

const ProbeRingInputSchema = z
  .object({
    hosts: z.array(HostNameSchema).min(1).max(RING_LIMITS.hosts),
    unreachableSeconds: UnreachableSecondsSchema,
    /** The plan's shared task queue, if any (instead of each host's own). */
    taskQueue: TaskQueueSchema.optional(),
  })
  .strict();
export type ProbeRingInput = z.input<typeof ProbeRingInputSchema>;

export interface HostProbe {
  host: string;
  version?: string;
  unreachable?: boolean;
  /** The probe failed otherwise (no gateway installed …): the ring's upgrade reports it. */
  error?: string;
}

export async function probeRing(raw: ProbeRingInput): Promise<HostProbe[]> {
  const input = validateInput(ProbeRingInputSchema, raw);
  const out: HostProbe[] = new Array<HostProbe>(input.hosts.length);
  let next = 0;
  const lane = async () => {
    while (next < input.hosts.length) {
      const i = next++;
      out[i] = await probeOne(input.hosts[i]!, input.unreachableSeconds, input.taskQueue);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, input.hosts.length) }, lane));
  return out;
}

async function probeOne(host: string, unreachableSeconds: number, queue: string | undefined): Promise<HostProbe> {
  const acts = onHost(hostQueue(host, queue), KIND.read, unreachableSeconds);
  try {
    const { version } = await acts.readInstalledVersion.executeWithOptions(
      { summary: `installed version on ${host}` },
      [],
    );
    return { host, version };
  } catch (err) {
    if (notPickedUp(err)) return { host, unreachable: true };
    return { host, error: clip(failureText(err), 200) };
  }
}
