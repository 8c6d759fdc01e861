/**
 * The controller's own activities: the few side effects of a workflow worker (the `fleet worker`,
 * the local agent) that belong to no host: ring rollout notifications (notify.ts) and a channel
 * schedule's checks (channel-activities.ts). Both trust only this process's own configuration.
 */
import { loadHostConfig, type HostConfig } from '../worker/host-config.js';
import { createChannelActivities } from './channel-activities.js';
import { createInventoryControllerActivities } from './inventory-visibility.js';
import { createNotifyActivities } from './notify.js';

export function createControllerActivities(env: NodeJS.ProcessEnv = process.env, config?: HostConfig) {
  return {
    ...createNotifyActivities(env),
    ...createChannelActivities(config ?? loadHostConfig(env)),
    ...createInventoryControllerActivities(),
  };
}

export type ControllerActivities = ReturnType<typeof createControllerActivities>;
