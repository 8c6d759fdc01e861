/**
 * `defenseclaw-upgrade worker uninstall`: stop and disable the service, remove its unit or plist;
 * the environment file stays unless --purge; the upgrader root (launcher, versions) always stays.
 */
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { lexists } from './files.js';
import { checkServiceManager, checkWritable } from './host-checks.js';
import { reloadCommands, runManager, showCommand, uninstallCommands } from './manager.js';
import { hostPath, resolveService, ServiceError, type ServiceFlags } from './resolve.js';

export interface UninstallFlags extends ServiceFlags {
  purge?: boolean;
}

export async function uninstallService(
  flags: UninstallFlags,
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
): Promise<number> {
  const { layout: L, prefix, isRoot } = await resolveService(flags, env);
  const dry = Boolean(flags.dryRun);
  if (L.scope === 'system' && !isRoot && !prefix && !dry) {
    throw new ServiceError('removing a system-scope service needs root: run it as root (or --scope user for your own)');
  }
  const hasService = await lexists(hostPath(prefix, L.servicePath));
  const hasEnv = await lexists(hostPath(prefix, L.envFile));
  const removeEnv = Boolean(flags.purge) && hasEnv;
  if (!hasService && !removeEnv) {
    out(`not installed, nothing to do: no ${L.servicePath}${prefix ? ` under ${prefix}` : ''}\n`);
    return 0;
  }
  if (!prefix && !dry && hasService) checkServiceManager(L, env);
  const gone = [...(hasService ? [L.servicePath] : []), ...(removeEnv ? [L.envFile] : [])];
  if (!dry) checkWritable(gone.map((p) => hostPath(prefix, p)));
  const before = prefix || !hasService ? [] : uninstallCommands(L);
  const after = prefix || !hasService ? [] : reloadCommands(L);
  out(
    `${dry ? 'dry run (nothing removed, nothing run): ' : ''}${L.platform === 'linux' ? 'systemd' : 'launchd'} ${L.scope} service${prefix ? `, files under ${prefix}` : ''}\n`,
  );
  for (const c of before) out(`run    ${showCommand(c)}\n`);
  for (const p of gone) out(`remove ${p}\n`);
  for (const c of after) out(`run    ${showCommand(c)}\n`);
  if (hasEnv && !removeEnv) out(`keep   ${L.envFile} (--purge removes it)\n`);
  out(`keep   ${L.upgraderRoot} (the launcher and the installed versions; remove it by hand if no longer wanted)\n`);
  if (dry) return 0;
  // A service that is not loaded any more is fine to remove.
  for (const c of before) await runManager(c, true);
  for (const p of gone) await rm(hostPath(prefix, p), { force: true });
  if (removeEnv) await rmdir(hostPath(prefix, path.dirname(L.envFile))).catch(() => undefined);
  for (const c of after) await runManager(c);
  out('uninstalled\n');
  return 0;
}
