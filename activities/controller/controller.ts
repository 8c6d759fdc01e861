/**
 * The controller's own activities: the few side effects of a workflow worker (the `fleet worker`,
 * the local agent) that belong to no host: ring rollout notifications (notify.ts), a channel
 * schedule's checks (channel-activities.ts), both trusting only this process's own configuration,
 * and the proof that a host's queue is polled by a new worker version (queue-version.ts).
 */
import { loadHostConfig, type HostConfig } from '../../worker/host-config.js';
import { createChannelActivities } from './channel-activities.js';
import { createInventoryControllerActivities } from './inventory-visibility.js';
import { createNotifyActivities } from './notify.js';
import { awaitQueueVersion } from './queue-version.js';

export function createControllerActivities(env: NodeJS.ProcessEnv = process.env, config?: HostConfig) {
  return {
    ...createNotifyActivities(env),
    ...createChannelActivities(config ?? loadHostConfig(env)),
    awaitQueueVersion,
    ...createInventoryControllerActivities(),
  };
}

export type ControllerActivities = ReturnType<typeof createControllerActivities>;
