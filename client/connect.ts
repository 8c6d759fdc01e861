/**
 * How a command reaches Temporal: a configured cluster (TEMPORAL_ADDRESS, a profile) when there
 * is one, otherwise this machine's local agent (embedded dev server + this host's worker),
 * started on demand so that one command does the whole job.
 */
import { ensureAgent } from '../worker/agent.js';
import { loadHostConfig, type HostConfigOverrides } from '../worker/host-config.js';
import { taskQueueForHost } from '../workflows/types.js';
import { connectTemporal, temporalConfigured, type TemporalConnection } from './temporal.js';

export interface TargetOptions {
  host?: string;
  taskQueue?: string;
  releasesUrl?: string;
  repo?: string;
}

export interface Target extends TemporalConnection {
  host: string;
  taskQueue: string;
  /** True when the local agent serves this command. */
  local: boolean;
}

export async function connectTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const overrides: HostConfigOverrides = {};
  if (opts.releasesUrl) overrides.releasesUrl = opts.releasesUrl;
  if (opts.repo) overrides.repo = opts.repo;
  if (temporalConfigured(env)) {
    // A remote cluster: the host's own worker runs there, configured on that host.
    const host = opts.host ?? loadHostConfig(env).host;
    const conn = await connectTemporal({ env });
    return { ...conn, host, taskQueue: opts.taskQueue ?? taskQueueForHost(host), local: false };
  }
  const agent = await ensureAgent({ env, hostOverrides: overrides });
  if (!agent.address || !agent.host || !agent.taskQueue)
    throw new Error(`the local agent is not ready: ${agent.error ?? agent.state}`);
  const host = opts.host ?? agent.host;
  const conn = await connectTemporal({
    env,
    address: agent.address,
    namespace: agent.namespace,
    uiBase: agent.uiUrl,
    useEnvConfig: false,
  });
  return {
    ...conn,
    host,
    taskQueue: opts.taskQueue ?? (host === agent.host ? agent.taskQueue : taskQueueForHost(host)),
    local: true,
  };
}
