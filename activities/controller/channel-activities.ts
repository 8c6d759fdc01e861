/**
 * createChannelActivities(config): the side effects of a channel schedule that run on the controller itself (the
 * `fleet worker`, on the fleet queue), not on a host: resolving a release channel, and reading and
 * writing a channel schedule's memory through the worker's Temporal client. `config` is the
 * controller's own configuration (its release source, read at start like a host's).
 */
import type { HostConfig } from '../../worker/host-config.js';
import * as channel from './channel.js';
import * as scheduleState from './schedule-state.js';

export function createChannelActivities(config: HostConfig) {
  return {
    resolveChannel: (input: channel.ResolveChannelInput) => channel.resolveChannel(config, input),
    previousRollout: (input: scheduleState.ScheduleInput) => scheduleState.previousRollout(input),
    syncChannelState: (input: scheduleState.SyncInput) => scheduleState.syncChannelState(input),
  };
}

export type ChannelActivities = ReturnType<typeof createChannelActivities>;
