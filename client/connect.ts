/**
 * How a command reaches Temporal: a configured cluster (TEMPORAL_ADDRESS, a profile) when there
 * is one, otherwise this machine's local agent (embedded dev server + this host's worker),
 * started on demand so that one command does the whole job.
 */
import { agentStatus, ensureAgent } from '../worker/agent/agent.js';
import { agentPaths, type AgentInfo } from '../worker/agent/agent-files.js';
import fs from 'node:fs';
import { CliFailure } from './errors.js';
import { loadHostConfig, type HostConfigOverrides } from '../worker/host-config.js';
import { FLEET_TASK_QUEUE } from '../workflows/fleet/fleet-types.js';
import { AGENT_WORKFLOW_QUEUE, TaskQueueSchema, parseWith, taskQueueForHost } from '../workflows/types.js';
import { connectTemporal, temporalConfigured, type TemporalConnection } from './temporal.js';

export interface TargetOptions {
  host?: string;
  taskQueue?: string;
  releasesUrl?: string;
  repo?: string;
  /**
   * Only reach a local agent that exists: when nothing ever ran here (no Temporal data yet), fail
   * with `nothingRan` instead of starting one (`status` must not leave an agent resident).
   */
  nothingRan?: string;
}

/** The local agent behind a target: what the CLI needs to notice its death and restart it. */
export interface LocalAgent {
  dataDir: string;
  info: AgentInfo;
  /** Starts it again on the same ports (the CLI's connection reconnects by itself). */
  restart(timeoutMs?: number): Promise<AgentInfo>;
  /** True when this command started it (it was not running before). */
  started: boolean;
}

export interface Target extends TemporalConnection {
  host: string;
  /** The host's own queue: its activity-only worker. */
  taskQueue: string;
  /**
   * Where the host's workflows run: the local agent's queue, or on a cluster the controller's
   * (`defenseclaw-upgrade fleet worker`; DEFENSECLAW_WORKFLOW_QUEUE overrides it).
   */
  workflowQueue: string;
  /** True when the local agent serves this command. */
  local: boolean;
  agent?: LocalAgent;
}

function portOf(address: string | undefined): number | undefined {
  const m = address ? /:(\d+)\/?$/.exec(address) : null;
  return m ? Number(m[1]) : undefined;
}

export async function connectTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const overrides: HostConfigOverrides = {};
  if (opts.releasesUrl) overrides.releasesUrl = opts.releasesUrl;
  if (opts.repo) overrides.repo = opts.repo;
  if (temporalConfigured(env)) {
    // A remote cluster: the host's own worker runs there, configured on that host.
    const host = opts.host ?? loadHostConfig(env).host;
    const conn = await connectTemporal({ env });
    const workflowQueue = env.DEFENSECLAW_WORKFLOW_QUEUE
      ? parseWith(TaskQueueSchema, env.DEFENSECLAW_WORKFLOW_QUEUE, 'DEFENSECLAW_WORKFLOW_QUEUE')
      : FLEET_TASK_QUEUE;
    return { ...conn, host, taskQueue: opts.taskQueue ?? taskQueueForHost(host), workflowQueue, local: false };
  }
  const dataDir = loadHostConfig(env, overrides).dataDir;
  const before = await agentStatus(dataDir);
  if (!before.running && opts.nothingRan && !fs.existsSync(agentPaths(dataDir).dbFile)) {
    throw new CliFailure(opts.nothingRan);
  }
  if (!before.running && before.info && ['ready', 'starting', 'failed'].includes(before.info.state)) {
    // It did not stop by itself: say so before starting another one.
    process.stderr.write(
      `the local agent (pid ${before.info.pid}) died${before.info.error ? `: ${before.info.error}` : ''}; restarting it\n`,
    );
  }
  if (!before.running && before.info?.state === 'stopped' && before.info.asleep) {
    process.stderr.write(`waking the local agent (asleep since ${before.info.stoppedAt ?? '?'})\n`);
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
    workflowQueue: AGENT_WORKFLOW_QUEUE,
    local: true,
    agent: {
      dataDir,
      info: agent,
      started: !agent.reused,
      restart: (timeoutMs) =>
        ensureAgent({
          env,
          hostOverrides: overrides,
          temporalPort: portOf(agent.address),
          uiPort: portOf(agent.uiUrl),
          timeoutMs,
        }),
    },
  };
}
