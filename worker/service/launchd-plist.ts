/**
 * The launchd property list `worker install` writes on macOS. launchd has no EnvironmentFile, and
 * the plist is world-readable (0644), so the credentials stay in the 0600 environment file: Node
 * itself reads it (`node --env-file=<file> <root>/launcher.mjs worker`, Node ≥ 20.6), and the
 * launcher passes its environment on to the worker.
 */
import path from 'node:path';
import { build } from 'plist';
import { LAUNCHD_LABEL, type Layout } from './layout.js';
import { WORKER_NODE_OPTIONS } from '../runtime-tuning.js';

export function launchdProgramArguments(layout: Layout): string[] {
  return [layout.nodePath, `--env-file=${layout.envFile}`, path.join(layout.upgraderRoot, 'launcher.mjs'), 'worker'];
}

export function renderLaunchdPlist(layout: Layout): string {
  const a = layout.account;
  const env: Record<string, string> = {
    HOME: a.home,
    NODE_ENV: 'production',
    NODE_OPTIONS: WORKER_NODE_OPTIONS,
    // launchd's default PATH lacks /usr/local/bin and Homebrew's: node, openclaw, cosign, uv live there.
    PATH: [
      path.dirname(layout.nodePath),
      '/usr/local/bin',
      '/opt/homebrew/bin',
      '/usr/bin',
      '/bin',
      '/usr/sbin',
      '/sbin',
    ]
      .filter((p, i, all) => all.indexOf(p) === i)
      .join(':'),
    DEFENSECLAW_HOME: a.dataDir,
    DEFENSECLAW_BIN_DIR: a.binDir,
  };
  if (a.openclawHome) env.OPENCLAW_HOME = a.openclawHome;
  const job: Record<string, string | boolean | number | string[] | Record<string, string>> = {
    Label: LAUNCHD_LABEL,
    ProgramArguments: launchdProgramArguments(layout),
    EnvironmentVariables: env,
    WorkingDirectory: a.home,
    RunAtLoad: true,
    // Like systemd's Restart=always: the launcher restarts the worker; launchd restarts the launcher.
    KeepAlive: true,
    ThrottleInterval: 5,
    // SIGTERM, then 60 s for in-flight activities before SIGKILL.
    ExitTimeOut: 60,
    Umask: 0o077,
    // No ProcessType: launchd's default (Standard); Background would throttle the downloads and installs.
    StandardOutPath: layout.logFile!,
    StandardErrorPath: layout.logFile!,
  };
  if (layout.scope === 'system') {
    job.UserName = a.name;
    job.GroupName = a.group;
  }
  return `${build(job)}\n`;
}
