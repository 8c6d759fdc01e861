/**
 * Migrations prepared before the stop (issue 21): the target release's migrations run, in the new
 * Python environment, against the live host as it is, ISOLATED, while the old gateway still serves.
 *
 *   unshare --mount --propagation private     (root; otherwise `--user --map-root-user` as well)
 *     the data dir and OpenClaw's home:  an overlay whose lower layer is the live folder and whose upper
 *                                        layer is staging/<run>/migrations/<root>/upper: every write of
 *                                        the run lands there, the live files are never written
 *     ~/.defenseclaw/.venv               the new environment (as after the switch)
 *     ~/.local/bin/defenseclaw-gateway   the staged new gateway (0.8.5 validates the candidate config
 *                                        with it: DEFENSECLAW_GATEWAY_BIN, else PATH, else ~/.local/bin)
 *     gateway.pid, watchdog.pid          hidden (inside the window the gateway is proven stopped)
 *
 * The run is the very program the window runs (migration-program.ts), judged by the same rules, so a
 * failure fails the upgrade here, before the stop, with nothing live changed. Its changes and the
 * digests of its inputs go to staging/<run>/migrations/prepared.json; the window puts the changes in
 * place by rename when every input is still byte-identical (migrations.ts). Where isolation is not
 * possible the answer says why, and the window runs the migrations itself, as before.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../../worker/host-config.js';
import { STAGING_ID, stagedBinaryPath, stagingDir } from './artifacts.js';
import { venvPath } from './backup.js';
import { gatewayBinary } from './gateway.js';
import { liveRoots, type Root, type Roots } from './host-files.js';
import { VENV_ID, venvsRoot } from './install.js';
import { appliedFrom, judge, MigrateArgs, parseReport, PROGRAM, programArgs, Report } from './migration-program.js';
import { digestInputs, firstDifference, resultDigests, type Change } from './migration-files.js';
import { startWarm } from './warm-python.js';
import { run, which } from '../exec.js';
import { inside, lstatOrUndefined } from '../fsutil.js';
import { cancellationSignal, validated } from '../support.js';

const PrepareInput = MigrateArgs.extend({
  stagingId: STAGING_ID,
  venvId: VENV_ID,
}).strict();
export type PrepareInput = z.input<typeof PrepareInput>;

const ChangeSchema = z.object({
  root: z.enum(['data', 'openclaw']),
  path: z.string().min(1).max(1024),
  kind: z.enum(['file', 'dir', 'link', 'gone']),
  opaque: z.boolean().optional(),
  mode: z.number().int().min(0).max(0o7777).optional(),
});

/** staging/<run>/migrations/prepared.json */
export const Prepared = z.object({
  args: MigrateArgs,
  prepared: z.boolean(),
  reason: z.string().max(400).optional(),
  inputs: z.record(z.string(), z.string()).optional(),
  after: z.record(z.string(), z.string()).optional(),
  changes: z.array(ChangeSchema).max(10_000).optional(),
  report: Report.optional(),
  output: z.string().max(70_000).optional(),
});
export type Prepared = z.infer<typeof Prepared>;

export async function migrationsDir(config: HostConfig, stagingId: string): Promise<string> {
  return path.join(await stagingDir(config, stagingId), 'migrations');
}

export function uppersIn(dir: string): Roots {
  return { data: path.join(dir, 'data', 'upper'), openclaw: path.join(dir, 'openclaw', 'upper') };
}

/** Data-dir paths that are not the migrations' business: hidden pid files, our own folders. */
const NOT_RESULTS = /^(gateway\.pid|watchdog\.pid|staging|venvs|\.venv)(\/|$)/;

/**
 * Mounts, hides, runs the migrations in a child (`python -I -c PROGRAM`, as the window does), unmounts,
 * and reports the upper layers (overlay xattrs removed, so the files can be renamed into place).
 */
const STAGE = [
  'import ctypes, json, os, stat, subprocess, sys',
  'cfg = json.loads(sys.argv[1])',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]',
  'libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]',
  'enc = lambda s: None if s is None else s.encode()',
  'def mount(src, dst, fstype, flags, data):',
  '    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:',
  '        e = ctypes.get_errno()',
  '        raise OSError(e, os.strerror(e), dst)',
  'mounted = []',
  'try:',
  "    mount(None, '/', None, 16384 | (1 << 18), None)",
  "    venv = os.open(cfg['venv'], os.O_RDONLY | os.O_DIRECTORY)",
  "    for o in cfg['overlays']:",
  "        opts = 'lowerdir=%s,upperdir=%s,workdir=%s' % (o['lower'], o['upper'], o['work'])",
  "        mount('overlay', o['lower'], 'overlay', 0, opts + (',userxattr' if cfg['userns'] else ''))",
  "        mounted.append(o['lower'])",
  "    mount('/proc/self/fd/%d' % venv, cfg['venvLink'], None, 4096, None)",
  "    mounted.insert(0, cfg['venvLink'])",
  "    mount(cfg['gateway'][0], cfg['gateway'][1], None, 4096, None)",
  "    mounted.insert(0, cfg['gateway'][1])",
  "    for p in cfg['hide']:",
  '        if os.path.lexists(p): os.unlink(p)',
  'except OSError as e:',
  "    print('STAGE-UNAVAILABLE ' + str(e)[:300], flush=True)",
  '    sys.exit(3)',
  "print('STAGE-ISOLATED', flush=True)",
  "r = subprocess.run([cfg['python'], '-I', '-c', cfg['program']] + cfg['args'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)",
  "sys.stdout.write(r.stdout.decode('utf-8', 'replace') + '\\n')",
  'for m in mounted: libc.umount2(m.encode(), 2)',
  'changes = []',
  "for o in cfg['overlays']:",
  "    up = o['upper']",
  '    for dirpath, dirs, files in os.walk(up):',
  '        for name in dirs + files:',
  '            p = os.path.join(dirpath, name)',
  '            st = os.lstat(p)',
  "            c = {'root': o['root'], 'path': os.path.relpath(p, up), 'mode': stat.S_IMODE(st.st_mode)}",
  '            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:',
  "                c['kind'] = 'gone'",
  '            else:',
  "                c['kind'] = 'dir' if stat.S_ISDIR(st.st_mode) else 'link' if stat.S_ISLNK(st.st_mode) else 'file'",
  '                for x in os.listxattr(p, follow_symlinks=False):',
  "                    if x.endswith('overlay.opaque'): c['opaque'] = True",
  "                    if '.overlay.' in x: os.removexattr(p, x, follow_symlinks=False)",
  '            changes.append(c)',
  "print('STAGE-RESULT ' + json.dumps({'exit': r.returncode, 'changes': changes}), flush=True)",
].join('\n');

/** The operator turned prepared migrations off (DEFENSECLAW_PREPARED_MIGRATIONS=0): the window runs them cold. */
const turnedOff = (config: HostConfig) =>
  /^(0|off|false|no)$/i.test(config.commandEnv.DEFENSECLAW_PREPARED_MIGRATIONS ?? '');

/** Why this host cannot prepare its migrations in isolation (undefined: it can). */
async function unavailable(config: HostConfig, roots: Roots): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'isolation needs Linux mount namespaces';
  for (const p of [roots.data, roots.openclaw, config.binDir]) {
    if (/[,:\\\n=]/.test(p)) return `the path ${p} cannot be an overlay layer`;
  }
  const rel = path.relative(roots.data, roots.openclaw);
  if (!rel || !rel.startsWith('..') || !path.relative(roots.openclaw, roots.data).startsWith('..'))
    return "OpenClaw's home and the data dir overlap";
  if (!(await lstatOrUndefined(roots.openclaw))?.isDirectory()) return "OpenClaw's home does not exist";
  // 0.8.5+ refreshes (and restarts) the local observability stack from inside the migration: not isolable.
  if (await lstatOrUndefined(path.join(roots.data, 'observability-stack')))
    return 'the local observability stack is installed (its refresh restarts containers)';
  if (!(await which('unshare', config.commandEnv)) && !(await lstatOrUndefined('/usr/bin/unshare')))
    return 'unshare is not installed';
  return undefined;
}

export interface PrepareResult {
  prepared: boolean;
  reason?: string;
  ran?: number;
  changed?: number;
  /** The changed paths (the first 12), relative to their root. */
  paths?: string[];
  warning?: string;
}

async function record(dir: string, p: Prepared): Promise<void> {
  await fs.writeFile(path.join(dir, 'prepared.json'), JSON.stringify(p), { mode: 0o600 });
}

/**
 * Activity (before the stop): prepares the hop's migrations (above). Throws, with one line, when they
 * fail; answers `prepared: false` with the reason when they cannot be prepared in isolation. Either
 * way it leaves the new environment's interpreter warm for the window.
 */
export async function prepareMigrations(config: HostConfig, rawInput: unknown): Promise<PrepareResult> {
  const input = validated(PrepareInput, rawInput, 'prepareMigrations');
  const args: MigrateArgs = {
    fromVersion: input.fromVersion,
    toVersion: input.toVersion,
    ...(input.required ? { required: input.required } : {}),
    ...(input.failurePolicy ? { failurePolicy: input.failurePolicy } : {}),
  };
  const venv = inside(venvsRoot(config), input.venvId);
  const python = path.join(venv, 'bin', 'python');
  const dir = await migrationsDir(config, input.stagingId);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { mode: 0o700 });
  const roots = await liveRoots(config);
  const done = async (p: Omit<Prepared, 'args'>, r: PrepareResult, warm = true): Promise<PrepareResult> => {
    await record(dir, { args, ...p });
    if (warm) startWarm(input.stagingId, python, config.commandEnv);
    return r;
  };
  if (turnedOff(config)) {
    const reason = 'prepared migrations are turned off on this host (DEFENSECLAW_PREPARED_MIGRATIONS)';
    return done({ prepared: false, reason }, { prepared: false, reason }, false);
  }
  const why = await unavailable(config, roots);
  if (why) return done({ prepared: false, reason: why }, { prepared: false, reason: why });

  // OpenClaw's first: its layers live in the data dir, which is not yet covered by its own overlay then.
  const layers = (['openclaw', 'data'] as Root[]).map((root) => ({
    root,
    lower: roots[root],
    upper: path.join(dir, root, 'upper'),
    work: path.join(dir, root, 'work'),
  }));
  for (const l of layers) {
    await fs.mkdir(l.upper, { recursive: true, mode: 0o700 });
    await fs.mkdir(l.work, { recursive: true, mode: 0o700 });
  }
  const userns = typeof process.geteuid === 'function' && process.geteuid() !== 0;
  const cfg = {
    overlays: layers,
    userns,
    venv,
    venvLink: venvPath(config),
    gateway: [stagedBinaryPath(config, input.stagingId), gatewayBinary(config)],
    hide: ['gateway.pid', 'watchdog.pid'].map((n) => path.join(roots.data, n)),
    python: path.join(venvPath(config), 'bin', 'python'),
    program: PROGRAM,
    args: programArgs(args, roots.openclaw, config.dataDir),
  };
  const before = await digestInputs(roots);
  const unshare = (await which('unshare', config.commandEnv)) ?? '/usr/bin/unshare';
  const ns = userns ? ['--user', '--map-root-user'] : [];
  const r = await run(
    unshare,
    [...ns, '--mount', '--propagation', 'private', '--', python, '-I', '-c', STAGE, JSON.stringify(cfg)],
    { env: config.commandEnv, timeoutMs: 10 * 60_000, signal: cancellationSignal() },
  );
  for (const l of layers) await fs.rm(l.work, { recursive: true, force: true }).catch(() => undefined);
  const lines = r.output.split('\n');
  if (!lines.includes('STAGE-ISOLATED')) {
    const said = lines.find((l) => l.startsWith('STAGE-UNAVAILABLE ')) ?? lines.filter(Boolean).pop() ?? '';
    const reason = `isolation unavailable: ${said.replace(/^STAGE-UNAVAILABLE /, '').slice(0, 200)}`;
    return done({ prepared: false, reason }, { prepared: false, reason });
  }
  const resultLine = lines.find((l) => l.startsWith('STAGE-RESULT '));
  let staged: { exit: number; changes: Change[] };
  try {
    staged = z
      .object({ exit: z.number().int(), changes: z.array(ChangeSchema).max(10_000) })
      .parse(JSON.parse(resultLine!.slice('STAGE-RESULT '.length)));
  } catch {
    // The run ended without its report (killed, or more output than is kept): the window runs them.
    const reason = `the prepared run gave no readable report (exit ${r.exitCode})`;
    return done({ prepared: false, reason }, { prepared: false, reason });
  }
  const output = lines
    .slice(lines.indexOf('STAGE-ISOLATED') + 1)
    .filter((l) => !l.startsWith('STAGE-RESULT '))
    .join('\n')
    .trim();
  const where = ' (prepared before the stop; nothing was changed)';
  const report = parseReport(args, output, staged.exit, where);
  const changes: Change[] = staged.changes.filter((c) => c.root !== 'data' || !NOT_RESULTS.test(c.path));
  const uppers = uppersIn(dir);
  const cursor = changes.some((c) => c.root === 'data' && c.path === '.migration_state.json')
    ? path.join(uppers.data, '.migration_state.json')
    : path.join(roots.data, '.migration_state.json');
  const judged = judge(
    args,
    report,
    appliedFrom(await fs.readFile(cursor, 'utf8').catch(() => undefined)),
    output,
    where,
  );
  // The inputs must not have changed while the run read them.
  const inputs = await digestInputs(roots, changes);
  const moved = firstDifference(before, Object.fromEntries(Object.keys(before).map((k) => [k, inputs[k]!])));
  if (moved) {
    const reason = `${moved} changed while the migrations were prepared`;
    return done({ prepared: false, reason }, { prepared: false, reason });
  }
  const after = await resultDigests(uppers, changes);
  return done(
    { prepared: true, inputs, after, changes, report, output: output.slice(-60_000) },
    {
      prepared: true,
      ran: judged.ran,
      changed: changes.length,
      paths: changes.slice(0, 12).map((c) => (c.root === 'data' ? c.path : `~openclaw/${c.path}`)),
      ...(judged.warning ? { warning: judged.warning } : {}),
    },
  );
}
