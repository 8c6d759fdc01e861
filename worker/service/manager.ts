/** The service manager's commands (argument arrays, never a shell string), and running them. */
import { execa } from 'execa';
import { LAUNCHD_LABEL, UNIT_NAME, type Layout } from './layout.js';
import { ServiceError } from './resolve.js';

function systemctl(layout: Layout, ...args: string[]): string[] {
  return layout.scope === 'user' ? ['systemctl', '--user', ...args] : ['systemctl', ...args];
}

export function launchdDomain(layout: Layout): string {
  return layout.scope === 'system' ? 'system' : `gui/${layout.account.uid ?? process.getuid?.() ?? 0}`;
}

/** `bootout` may fail (nothing loaded yet): runManager tolerates it. */
export function installCommands(layout: Layout, replacing: boolean): string[][] {
  if (layout.platform === 'linux') {
    return [
      systemctl(layout, 'daemon-reload'),
      systemctl(layout, 'enable', '--now', UNIT_NAME),
      ...(replacing ? [systemctl(layout, 'restart', UNIT_NAME)] : []),
    ];
  }
  const domain = launchdDomain(layout);
  return [
    // bootstrap refuses a label that is loaded already (a replaced or leftover job): unload it first.
    ['launchctl', 'bootout', `${domain}/${LAUNCHD_LABEL}`],
    ['launchctl', 'enable', `${domain}/${LAUNCHD_LABEL}`],
    ['launchctl', 'bootstrap', domain, layout.servicePath],
  ];
}

/** Before the file goes: stop and disable. */
export function uninstallCommands(layout: Layout): string[][] {
  if (layout.platform === 'linux') return [systemctl(layout, 'disable', '--now', UNIT_NAME)];
  return [['launchctl', 'bootout', `${launchdDomain(layout)}/${LAUNCHD_LABEL}`]];
}

/** After the file went. */
export function reloadCommands(layout: Layout): string[][] {
  return layout.platform === 'linux' ? [systemctl(layout, 'daemon-reload')] : [];
}

export function showCommand(argv: string[]): string {
  return argv.join(' ');
}

/** Runs one command; `tolerate` lets a "not loaded" bootout pass. */
export async function runManager(argv: string[], tolerate = false): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = await execa(cmd, args, { reject: false, timeout: 120_000 });
  if (r.exitCode !== 0 && !tolerate) {
    const why = `${r.stderr || r.stdout}`.split('\n').find((l) => l.trim()) ?? `exit ${r.exitCode}`;
    throw new ServiceError(`${showCommand(argv)} failed: ${why.trim()}`);
  }
}

/** `systemctl show` / `launchctl print`: the manager's view of the service, or undefined when unknown. */
export async function managerState(layout: Layout): Promise<Record<string, string> | undefined> {
  if (layout.platform === 'linux') {
    const argv = systemctl(
      layout,
      'show',
      UNIT_NAME,
      '--property=LoadState,UnitFileState,ActiveState,SubState,MainPID',
    );
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, timeout: 10_000 });
    if (r.exitCode !== 0) return undefined;
    const out: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }
  const r = await execa('launchctl', ['print', `${launchdDomain(layout)}/${LAUNCHD_LABEL}`], {
    reject: false,
    timeout: 10_000,
  });
  if (r.exitCode !== 0) return { loaded: 'no' };
  const state = /^\s*state = (.+)$/m.exec(r.stdout)?.[1]?.trim();
  const pid = /^\s*pid = (\d+)$/m.exec(r.stdout)?.[1];
  return { loaded: 'yes', ...(state ? { state } : {}), ...(pid ? { pid } : {}) };
}
