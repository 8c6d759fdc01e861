/**
 * checkHost: the first step of every run refuses a run addressed to another host, so that the
 * audit trail names the right one. Its own module so that the activity index loads no schema
 * library before a run asks for it (issue 21).
 */
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { HostNameSchema } from '../../workflows/types.js';
import { FailureType, refuse, validated } from '../support.js';

export const CheckHostInput = z.object({ host: HostNameSchema }).strict();
export type CheckHostInput = z.input<typeof CheckHostInput>;

export async function checkHost(config: HostConfig, input: CheckHostInput): Promise<{ host: string }> {
  const { host } = validated(CheckHostInput, input, 'checkHost');
  if (host !== config.host)
    throw refuse(FailureType.HostMismatch, `this worker serves host ${config.host}, not ${host}`);
  return { host };
}
