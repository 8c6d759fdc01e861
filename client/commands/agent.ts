/** `agent start|stop|status`: the local agent (embedded Temporal dev server + this host's worker). */
import { agentStatus, ensureAgent, stopAgent } from '../../worker/agent/agent.js';
import { loadHostConfig } from '../../worker/host-config.js';
import { TOOL_VERSION } from '../../worker/tool-version.js';
import { color } from '../render/format.js';

/** The running agent's upgrader version, and this CLI's when they differ. */
function upgrader(v: string | undefined): string {
  const own = v ?? 'before 0.2';
  return v === TOOL_VERSION ? `upgrader ${own}` : `upgrader ${own} (this command is ${TOOL_VERSION})`;
}

export async function agentStart(flags: {
  releasesUrl?: string;
  repo?: string;
  temporalPort?: string;
  uiPort?: string;
  json?: boolean;
}): Promise<number> {
  const info = await ensureAgent({
    hostOverrides: {
      ...(flags.releasesUrl ? { releasesUrl: flags.releasesUrl } : {}),
      ...(flags.repo ? { repo: flags.repo } : {}),
    },
    temporalPort: flags.temporalPort ? Number(flags.temporalPort) : undefined,
    uiPort: flags.uiPort ? Number(flags.uiPort) : undefined,
    log: flags.json ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  if (flags.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
  else {
    process.stdout.write(
      `${color.green('agent running')} (pid ${info.pid}, ${upgrader(info.upgraderVersion)}${info.reused ? ', already running' : ''})\n` +
        `  Temporal:    ${info.address} (namespace ${info.namespace})\n  Temporal UI: ${info.uiUrl ?? 'off'}\n` +
        `  worker:      host ${info.host} on task queue ${info.taskQueue}\n  log:         ${info.logFile ?? ''}\n`,
    );
  }
  return 0;
}

export async function agentStop(flags: { json?: boolean }): Promise<number> {
  const r = await stopAgent(loadHostConfig().dataDir);
  if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else
    process.stdout.write(
      r.stopped ? `agent stopped (pid ${r.pid}${r.forced ? ', killed' : ''})\n` : 'no agent was running\n',
    );
  return 0;
}

export async function agentStatusCommand(flags: { json?: boolean }): Promise<number> {
  const s = await agentStatus(loadHostConfig().dataDir);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  } else if (s.running && s.info) {
    process.stdout.write(
      `${color.green('running')} pid ${s.info.pid}, ${upgrader(s.info.upgraderVersion)}, Temporal ${s.info.address}, UI ${s.info.uiUrl ?? 'off'}, host ${s.info.host} on ${s.info.taskQueue}\n`,
    );
  } else if (!s.alive && s.info && ['ready', 'starting', 'failed'].includes(s.info.state)) {
    // It did not stop: it died (killed, or an uncaught error it recorded).
    process.stdout.write(
      `${color.red('died')} pid ${s.info.pid}${s.info.error ? `: ${s.info.error}` : ''}; the next command restarts it\n`,
    );
  } else if (!s.alive && s.info?.asleep) {
    process.stdout.write(
      `${color.yellow('asleep')} since ${s.info.stoppedAt ?? '?'} (idle, no open run); the next command wakes it\n`,
    );
  } else {
    process.stdout.write(`${color.yellow('not running')}${s.alive ? ' (process alive but not answering)' : ''}\n`);
  }
  return s.running ? 0 : 3;
}
