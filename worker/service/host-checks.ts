/** What the host must have before `worker install|uninstall` touches it: the service manager, the rights. */
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Layout } from './layout.js';
import { ServiceError } from './resolve.js';

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

/** The service manager this layout needs, on this very host (not checked with --root). */
export function checkServiceManager(layout: Layout, env: NodeJS.ProcessEnv = process.env): void {
  if (layout.platform === 'linux') {
    if (!onPath('systemctl', env))
      throw new ServiceError(
        'this host has no systemd (no systemctl on PATH): run the worker another way, or write the files with --root',
      );
    if (!existsSync('/run/systemd/system')) {
      throw new ServiceError(
        'systemd is not running on this host (no /run/systemd/system): run the worker another way, or write the files with --root',
      );
    }
    if (layout.scope === 'user') {
      const rt = env.XDG_RUNTIME_DIR;
      if (!rt || !existsSync(path.join(rt, 'systemd', 'private'))) {
        throw new ServiceError(
          `no systemd user manager for ${layout.account.name} (XDG_RUNTIME_DIR/systemd/private missing): log in through a session, or run \`loginctl enable-linger ${layout.account.name}\` as root`,
        );
      }
    }
  } else if (!onPath('launchctl', env)) {
    throw new ServiceError(
      'this host has no launchd (no launchctl on PATH): use --platform linux, or write the files with --root',
    );
  }
}

function nearestExisting(p: string): string {
  let cur = p;
  while (!existsSync(cur)) {
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

/** Every file to be created, replaced or removed needs a writable directory; refuses before anything changes. */
export function checkWritable(files: string[]): void {
  for (const f of files) {
    const dir = nearestExisting(path.dirname(f));
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new ServiceError(
        `cannot write ${f} (${dir} is not writable for this user): run as root, or use --scope user`,
      );
    }
  }
}
