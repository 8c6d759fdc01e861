/**
 * The launcher: `node <root>/launcher.mjs [--env-file PATH] <args…>` (e.g. `worker`, `fleet worker`).
 *
 * Installed once by `worker install` and never replaced by a self-update, so it imports node:*
 * builtins only and must run alone. It supervises `node <root>/current/<entry> <args…>`:
 * - exit 75 restarts the child at once on whatever `current` now is; any other exit restarts it
 *   after a backoff (1 s doubling to 30 s, back to 1 s after a minute up);
 * - SIGTERM/SIGINT are forwarded, and the launcher exits when the child has;
 * - SIGUSR2 asks the child to stop (SIGTERM) and starts it again at once (used by `self-update`);
 * - when `switch.json` names the version `current` points at, that child must write `ready/<to>`
 *   within deadlineSeconds and not exit before; otherwise it is killed, `current` is pointed back
 *   at the previous version, a line goes to `reverts.jsonl` and one to stderr, `switch.json` is
 *   removed and the previous version started. A proven switch removes `switch.json`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESTART_EXIT_CODE = 75;
const ENTRIES = ['dist/client/main.js', 'node_modules/defenseclaw-upgrade/dist/client/main.js'];
const VERSION_RE = /^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]{1,64})?$/;
const KILL_GRACE_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;
const STABLE_MS = 60_000;

interface Switch {
  from: string;
  to: string;
  deadlineSeconds: number;
}

function log(line: string): void {
  process.stderr.write(`defenseclaw-upgrade launcher: ${line}\n`);
}

/** KEY=VALUE lines (systemd EnvironmentFile subset): comments, blank lines, optional quotes. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`line ${i + 1}: expected KEY=VALUE`);
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    } else if (q === '"' || q === "'") {
      throw new Error(`line ${i + 1}: unterminated quote for ${key}`);
    }
    out[key] = value;
  });
  return out;
}

/** The version a link (`current`, `previous`) points at: versions/<v> → <v>. */
export function linkVersion(link: string): string | undefined {
  try {
    const v = path.basename(fs.readlinkSync(link));
    return VERSION_RE.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Points `link` at versions/<v> atomically (a temporary symlink renamed over it). */
export function pointAt(root: string, link: string, version: string): void {
  const tmp = path.join(root, `.${link}.${process.pid}.${Date.now()}.tmp`);
  fs.symlinkSync(path.join('versions', version), tmp);
  fs.renameSync(tmp, path.join(root, link));
}

function readSwitch(file: string): Switch | undefined | 'garbled' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as Partial<Switch> & { schema?: unknown };
    const deadline = s.deadlineSeconds ?? 120;
    if (s.schema !== 1 || !VERSION_RE.test(String(s.from)) || !VERSION_RE.test(String(s.to))) return 'garbled';
    if (typeof deadline !== 'number' || !(deadline > 0 && deadline <= 3600)) return 'garbled';
    return { from: s.from!, to: s.to!, deadlineSeconds: deadline };
  } catch {
    return 'garbled';
  }
}

function entryOf(versionDir: string): string | undefined {
  for (const e of ENTRIES) {
    const p = path.join(versionDir, e);
    try {
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export function runLauncher(argv: string[]): void {
  let args = argv;
  let fileEnv: Record<string, string> = {};
  if (args[0] === '--env-file') {
    const file = args[1];
    if (!file) {
      log('usage: launcher.mjs [--env-file PATH] <args…>');
      process.exit(2);
    }
    try {
      fileEnv = parseEnvFile(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      log(`cannot use the environment file ${file}: ${e.code ?? e.message}`);
      process.exit(2);
    }
    args = args.slice(2);
  }
  const root = path.resolve(
    process.env.DEFENSECLAW_UPGRADER_ROOT ||
      fileEnv.DEFENSECLAW_UPGRADER_ROOT ||
      path.dirname(fileURLToPath(import.meta.url)),
  );
  const switchFile = path.join(root, 'switch.json');
  const pidFile = path.join(root, 'launcher.pid');
  fs.writeFileSync(pidFile, `${process.pid}\n`);

  let child: ChildProcess | undefined;
  let probation: Switch | undefined;
  let stopping = false;
  let restartNow = false;
  let backoff = 1000;
  let timer: NodeJS.Timeout | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const finish = (code: number) => {
    try {
      if (fs.readFileSync(pidFile, 'utf8').trim() === String(process.pid)) fs.rmSync(pidFile);
    } catch {
      // gone already
    }
    process.exit(code);
  };

  const stopChild = () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const c = child;
    killTimer = setTimeout(() => c.kill('SIGKILL'), KILL_GRACE_MS);
  };

  const revert = (sw: Switch, reason: string) => {
    const back = fs.existsSync(path.join(root, 'versions', sw.from))
      ? sw.from
      : linkVersion(path.join(root, 'previous'));
    const at = new Date().toISOString();
    if (back && back !== sw.to) {
      pointAt(root, 'current', back);
      fs.appendFileSync(path.join(root, 'reverts.jsonl'), `${JSON.stringify({ at, from: sw.to, to: back, reason })}\n`);
      log(`reverted ${sw.to} → ${back}: ${reason}`);
    } else {
      log(`switch to ${sw.to} failed (${reason}) and there is no previous version to go back to`);
    }
    fs.rmSync(switchFile, { force: true });
  };

  const schedule = (delay: number) => {
    clearTimeout(timer);
    timer = setTimeout(start, delay);
  };

  const afterFailure = (why: string) => {
    log(`${why}; starting again in ${backoff / 1000} s`);
    schedule(backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  };

  function start(): void {
    if (stopping) return finish(0);
    const current = path.join(root, 'current');
    const version = linkVersion(current);
    const sw = readSwitch(switchFile);
    probation = undefined;
    if (sw === 'garbled') {
      log('switch.json is unreadable: removed, staying on the current version');
      fs.rmSync(switchFile, { force: true });
    } else if (sw && sw.to === version) {
      probation = sw;
    } else if (sw) {
      log(`switch.json names ${sw.to} but current is ${version ?? 'missing'}: removed`);
      fs.rmSync(switchFile, { force: true });
    }
    const entry = entryOf(current);
    if (!entry) {
      if (probation) {
        revert(probation, `version ${probation.to} has no entry point`);
        return start();
      }
      return afterFailure(`no runnable version at ${current}`);
    }
    const ready = probation ? path.join(root, 'ready', probation.to) : undefined;
    if (ready) fs.rmSync(ready, { force: true });
    const env = { ...process.env, ...fileEnv, DEFENSECLAW_UPGRADER_ROOT: root, DEFENSECLAW_UPGRADER_LAUNCHER: '1' };
    const startedAt = Date.now();
    const c = spawn(process.execPath, [entry, ...args], { stdio: 'inherit', env });
    child = c;
    const sw2 = probation;
    let watch: NodeJS.Timeout | undefined;
    if (sw2 && ready) {
      watch = setInterval(() => {
        if (child !== c || probation !== sw2) return clearInterval(watch);
        if (fs.existsSync(ready)) {
          clearInterval(watch);
          probation = undefined;
          fs.rmSync(switchFile, { force: true });
          log(`switch ${sw2.from} → ${sw2.to} proven: version ${sw2.to} polls`);
        } else if (Date.now() - startedAt > sw2.deadlineSeconds * 1000) {
          clearInterval(watch);
          probation = undefined;
          revert(sw2, `version ${sw2.to} did not poll within ${sw2.deadlineSeconds} s`);
          restartNow = true;
          stopChild();
        }
      }, 200);
    }
    c.on('error', (err) => log(`cannot start ${entry}: ${err.message}`));
    c.on('exit', (code, signal) => {
      clearTimeout(killTimer);
      clearInterval(watch);
      child = undefined;
      if (stopping) return finish(code ?? 0);
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (probation === sw2 && sw2) {
        probation = undefined;
        revert(sw2, `version ${sw2.to} exited (${how}) before it polled`);
        return start();
      }
      if (Date.now() - startedAt >= STABLE_MS) backoff = 1000;
      if (restartNow || code === RESTART_EXIT_CODE) {
        restartNow = false;
        return start();
      }
      afterFailure(`the worker exited (${how})`);
    });
  }

  const onStop = (sig: NodeJS.Signals) => {
    stopping = true;
    clearTimeout(timer);
    if (child) child.kill(sig);
    else finish(0);
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGUSR2', () => {
    restartNow = true;
    if (child) stopChild();
    else schedule(0);
  });
  start();
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(self)) runLauncher(process.argv.slice(2));
