/**
 * The systemd unit `worker install` writes: the worker under its launcher, sandboxed.
 * deploy/defenseclaw-upgrade-worker.service is this text for the default settings (a test checks it).
 */
import path from 'node:path';
import type { Layout } from './layout.js';
import { WORKER_GLIBC_TUNABLES, WORKER_NODE_OPTIONS } from '../runtime-tuning.js';

const HEADER = `# defenseclaw-upgrade worker: this host's worker under its launcher, polling its own task queue
# (defenseclaw-upgrade@<host>) on a remote Temporal cluster (docker-compose.yml, or Temporal Cloud).
#
# Written by \`defenseclaw-upgrade worker install\` (see \`worker install --help\`; \`--dry-run\` shows
# it first); \`worker status\` reads it, \`worker uninstall\` removes it. Do not edit: install again
# with other flags and --force. The launcher (<upgrader root>/launcher.mjs) runs the version that
# <upgrader root>/current points at, and switches back to the previous one when a new version
# does not prove itself (a self-update never replaces the launcher).
#
# The environment file (0600; systemd reads it before dropping privileges, so the credentials never
# need to be readable by the service user) holds TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, the TLS paths
# or TEMPORAL_API_KEY, DEFENSECLAW_HOST, GITHUB_TOKEN, ... The worker reads everything it trusts
# from this environment at start; workflows can only name a version and bounded options.
`;

const TUNING_LINES = [
  "# A small young generation: an idle worker's resident memory drops by ~30 MB (npm run bench -- idle).",
  `Environment=NODE_OPTIONS=${WORKER_NODE_OPTIONS}`,
  "# glibc's malloc gives back what start-up freed: ~10 MB less resident memory (npm run bench -- idle).",
  `Environment=GLIBC_TUNABLES=${WORKER_GLIBC_TUNABLES}`,
];

function rwPath(p: string, optional: boolean): string {
  return optional ? `-${p}` : p;
}

export function renderSystemdUnit(layout: Layout): string {
  const { account: a, scope } = layout;
  const system = scope === 'system';
  const launcher = path.join(layout.upgraderRoot, 'launcher.mjs');
  const openclaw = a.openclawHome ?? path.join(a.home, '.openclaw');
  const lines: string[] = [
    HEADER,
    '[Unit]',
    'Description=defenseclaw-upgrade worker (DefenseClaw gateway upgrades through Temporal)',
    `Documentation=file://${layout.upgraderRoot}/current/README.md`,
    ...(system ? ['Wants=network-online.target', 'After=network-online.target'] : []),
    '# Never give up restarting it (see Restart= below).',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
  ];
  if (system) {
    lines.push(
      '# The account that owns the DefenseClaw install (~/.defenseclaw, ~/.local/bin, ~/.openclaw).',
      `User=${a.name}`,
      `Group=${a.group}`,
      `Environment=HOME=${a.home}`,
    );
  }
  lines.push(
    'Environment=NODE_ENV=production',
    ...TUNING_LINES,
    `Environment=DEFENSECLAW_HOME=${a.dataDir}`,
    `Environment=DEFENSECLAW_BIN_DIR=${a.binDir}`,
    ...(a.openclawHome ? [`Environment=OPENCLAW_HOME=${a.openclawHome}`] : []),
    `EnvironmentFile=${layout.envFile}`,
    `WorkingDirectory=${a.home}`,
    `ExecStart=${layout.nodePath} ${launcher} worker`,
    '',
    '# SIGTERM = graceful shutdown: the launcher forwards it, polling stops, in-flight activities get',
    '# their grace time. An interrupted upgrade is not lost: its workflow waits in Temporal and resumes',
    '# on the next start.',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    '# Only the launcher is signalled on stop (it stops the worker): the DefenseClaw gateway the worker',
    '# (re)started must keep running.',
    'KillMode=process',
    '# A launcher that dies comes back 5 s later, for as long as it takes; the launcher itself restarts',
    '# a worker that exits (70 after an uncaught error, 75 to switch versions). `fleet status` shows',
    '# the host as `worker gone` meanwhile.',
    'Restart=always',
    'RestartSec=5',
    '',
    '# --- Hardening -------------------------------------------------------------------------------',
    'NoNewPrivileges=yes',
    'UMask=0077',
  );
  if (system) {
    lines.push(
      'ProtectSystem=strict',
      'ProtectHome=read-only',
      '# What an upgrade changes: the data dir (state, backups, staging, venvs), the bin dir (the gateway',
      '# binary and the defenseclaw link) and OpenClaw\'s home (its restart). "-": skip when missing.',
      `ReadWritePaths=${rwPath(a.dataDir, false)} ${rwPath(a.binDir, false)} ${rwPath(openclaw, true)}`,
      '# uv/pip caches used while preparing the new Python environment.',
      `ReadWritePaths=${rwPath(a.cacheDir, true)}`,
      '# The upgrader root: a self-update installs versions/<v> and switches current there.',
      `ReadWritePaths=${layout.upgraderRoot}`,
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'ProtectKernelTunables=yes',
      'ProtectKernelModules=yes',
      'ProtectKernelLogs=yes',
      'ProtectControlGroups=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
    );
  } else {
    lines.push(
      '# A user manager cannot mount a private view of the file system without a user namespace',
      '# (systemd then turns on PrivateUsers=, or ignores the settings), so the ProtectSystem=/',
      '# ReadWritePaths=/Private*= sandbox of the system unit is left out; the seccomp filters stay.',
    );
  }
  lines.push(
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    "# Node's JIT needs writable+executable memory, so MemoryDenyWriteExecute stays off.",
    'MemoryDenyWriteExecute=no',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
  );
  if (system) lines.push('CapabilityBoundingSet=', 'AmbientCapabilities=');
  lines.push('', '[Install]', `WantedBy=${system ? 'multi-user.target' : 'default.target'}`, '');
  return lines.join('\n');
}
