/**
 * `worker install|uninstall|status` as a user runs them (the CLI as a child process), writing under
 * `--root <tmp>`: the systemd unit passes `systemd-analyze verify` (and a broken one does not), the
 * launchd plist parses as a property list (Python's plistlib), the environment file is 0600 in a
 * 0700 directory and the only place a secret is ever written, `--dry-run` writes nothing, an
 * existing service with other settings is refused with a diff and left byte-identical, the rights
 * and the host's service manager are checked for real (as `nobody` through setpriv, PATH without
 * systemctl, launchctl on Linux), and deploy/'s example unit is what install writes by default.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { CLI_MAIN, runCli, type CliRun } from './helpers/cli.js';
import { startTestEnvironment } from './helpers/temporal.js';

const execFileP = promisify(execFile);
const PKG = path.resolve(path.dirname(CLI_MAIN), '..', '..');
const VERSION = (JSON.parse(await fs.readFile(path.join(PKG, 'package.json'), 'utf8')) as { version: string }).version;
const LAUNCHER = path.join(PKG, 'dist', 'worker', 'launcher', 'launcher.js');
const UNIT = 'etc/systemd/system/defenseclaw-upgrade-worker.service';
const ENV_FILE = 'etc/defenseclaw-upgrade/worker.env';
const PLIST = 'Library/LaunchDaemons/com.defenseclaw.upgrade-worker.plist';
const API_KEY = 'tk_' + 'Z9q'.repeat(12) + 'x'; // 40 chars
const IS_ROOT = process.getuid?.() === 0;

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'dcu-svc-'));
  await fs.chmod(d, 0o755);
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** A user's environment without anything of this process's (no DEFENSECLAW_*, no TEMPORAL_*). */
function userEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, NO_COLOR: '1', ...extra };
}

function cli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return runCli(args, env, 60_000);
}

/** Every entry under a directory: mode, and content digest or link target. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await fs.readdir(dir, { recursive: true })) {
    const p = path.join(dir, rel);
    const st = await fs.lstat(p);
    const what = st.isSymbolicLink()
      ? `-> ${await fs.readlink(p)}`
      : st.isFile()
        ? createHash('sha256')
            .update(await fs.readFile(p))
            .digest('hex')
        : 'dir';
    out[rel] = `${(st.mode & 0o7777).toString(8)} ${st.uid} ${what}`;
  }
  return out;
}

const HOST_UNIT = '/etc/systemd/system/defenseclaw-upgrade-worker.service';
const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );
const mode = async (p: string) => (await fs.stat(p)).mode & 0o777;

/** `systemd-analyze verify`: clean means exit 0 AND no warning (a bad directive only warns). */
async function analyze(unitFile: string, user = false): Promise<{ ok: boolean; output: string }> {
  const rt = await tmp();
  await fs.chmod(rt, 0o700);
  const args = [...(user ? ['--user'] : []), 'verify', '--man=no', unitFile];
  try {
    const r = await execFileP('systemd-analyze', args, { env: { ...process.env, XDG_RUNTIME_DIR: rt } });
    return { ok: r.stderr.trim() === '', output: r.stderr };
  } catch (err) {
    const e = err as { code?: string | number; stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error("systemd-analyze is missing: install Debian's systemd package (.ci/run does)");
    return { ok: false, output: e.stderr ?? String(err) };
  }
}

/** The CLI as the unprivileged `nobody` (setpriv, which util-linux ships) when this runs as root, else as this user. */
async function cliAsNobody(args: string[], home: string): Promise<CliRun> {
  if (!IS_ROOT) return cli(args, userEnv(home));
  try {
    const r = await execFileP(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        // Only to read the package wherever this checkout lives (e.g. under a 0700 /root): it grants no write.
        '--inh-caps=+dac_read_search',
        '--ambient-caps=+dac_read_search',
        '--',
        process.execPath,
        CLI_MAIN,
        ...args,
      ],
      { env: userEnv(home), timeout: 60_000 },
    );
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('worker install, systemd', () => {
  it('system scope: unit, env file 0600 in 0700, launcher copy, versions and current links; the unit verifies', async () => {
    const root = await tmp();
    const env = userEnv(root, { TEMPORAL_API_KEY: API_KEY, TEMPORAL_NAMESPACE: 'prod', DEFENSECLAW_REPO: 'acme/dc' });
    const r = await cli(
      [
        'worker',
        'install',
        '--root',
        root,
        '--platform',
        'linux',
        '--scope',
        'system',
        '--address',
        'temporal.example:7233',
        '--host',
        'gw-01',
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /written under .*nothing was enabled \(--root\)/);
    const unit = await fs.readFile(path.join(root, UNIT), 'utf8');
    assert.equal(await mode(path.join(root, UNIT)), 0o644);
    assert.match(
      unit,
      new RegExp(`^ExecStart=${process.execPath} /opt/defenseclaw-upgrade/launcher\\.mjs worker$`, 'm'),
    );
    assert.match(unit, /^User=defenseclaw$/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/defenseclaw-upgrade\/worker\.env$/m);
    assert.match(unit, /^ProtectSystem=strict$/m);
    assert.match(unit, /^ReadWritePaths=\/opt\/defenseclaw-upgrade$/m);
    assert.match(
      unit,
      /^ReadWritePaths=\/home\/defenseclaw\/\.defenseclaw \/home\/defenseclaw\/\.local\/bin -\/home\/defenseclaw\/\.openclaw$/m,
    );
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
    const envText = await fs.readFile(path.join(root, ENV_FILE), 'utf8');
    assert.equal(await mode(path.join(root, ENV_FILE)), 0o600);
    assert.equal(await mode(path.join(root, path.dirname(ENV_FILE))), 0o700);
    assert.match(envText, /^TEMPORAL_ADDRESS=temporal\.example:7233$/m);
    assert.match(envText, /^TEMPORAL_NAMESPACE=prod$/m);
    assert.match(envText, /^DEFENSECLAW_HOST=gw-01$/m);
    assert.match(envText, /^DEFENSECLAW_REPO=acme\/dc$/m);
    assert.match(envText, new RegExp(`^TEMPORAL_API_KEY=${API_KEY}$`, 'm'));
    assert.ok(!unit.includes(API_KEY) && !r.stdout.includes(API_KEY) && !r.stderr.includes(API_KEY));
    const up = path.join(root, 'opt', 'defenseclaw-upgrade');
    assert.deepEqual(await fs.readFile(path.join(up, 'launcher.mjs')), await fs.readFile(LAUNCHER));
    assert.equal(await fs.readlink(path.join(up, 'current')), `versions/${VERSION}`);
    assert.equal(await fs.readlink(path.join(up, 'versions', VERSION)), PKG);
    assert.equal(await fs.realpath(path.join(up, 'current', 'package.json')), path.join(PKG, 'package.json'));

    const v = await analyze(path.join(root, UNIT));
    assert.ok(v.ok, `systemd-analyze verify: ${v.output}`);
  });

  it('systemd-analyze verify catches a broken directive, an unknown key and a missing binary (the check can fail)', async () => {
    const root = await tmp();
    assert.equal(
      (await cli(['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system'], userEnv(root)))
        .code,
      0,
    );
    const good = await fs.readFile(path.join(root, UNIT), 'utf8');
    const dir = await tmp();
    const cases: Array<[string, string]> = [
      ['bad value', good.replace('ProtectSystem=strict', 'ProtectSystem=bogus')],
      ['unknown key', good.replace('ProtectSystem=strict', 'ProtectSystm=strict')],
      ['missing binary', good.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node')],
    ];
    for (const [what, text] of cases) {
      assert.notEqual(text, good, what);
      const f = path.join(dir, 'defenseclaw-upgrade-worker.service');
      await fs.writeFile(f, text);
      const v = await analyze(f);
      assert.ok(!v.ok, `${what} passed systemd-analyze verify`);
    }
  });

  it('user scope: no User=, no namespace sandbox, WantedBy=default.target; verifies as a user unit', async () => {
    const root = await tmp();
    const home = path.join(root, 'home', 'ann');
    const r = await cli(['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'user'], userEnv(home));
    assert.equal(r.code, 0, r.stderr);
    const unitPath = path.join(root, home, '.config', 'systemd', 'user', 'defenseclaw-upgrade-worker.service');
    const unit = await fs.readFile(unitPath, 'utf8');
    for (const k of ['User=', 'Group=', 'ProtectSystem=', 'ReadWritePaths=', 'PrivateTmp=', 'CapabilityBoundingSet=']) {
      assert.ok(!new RegExp(`^${k}`, 'm').test(unit), `${k} in a user unit`);
    }
    assert.match(unit, /^SystemCallFilter=@system-service$/m);
    assert.match(unit, /^WantedBy=default\.target$/m);
    assert.match(unit, new RegExp(`^EnvironmentFile=${home}/\\.config/defenseclaw-upgrade/worker\\.env$`, 'm'));
    assert.match(
      unit,
      new RegExp(`^ExecStart=\\S+ ${home}/\\.local/share/defenseclaw-upgrade/launcher\\.mjs worker$`, 'm'),
    );
    assert.equal(await mode(path.join(root, home, '.config', 'defenseclaw-upgrade', 'worker.env')), 0o600);
    const link = path.join(root, home, '.local', 'share', 'defenseclaw-upgrade', 'current');
    assert.equal(await fs.readlink(link), `versions/${VERSION}`);
    const v = await analyze(unitPath, true);
    assert.ok(v.ok, `systemd-analyze --user verify: ${v.output}`);
  });

  it('--user NAME found in DIR/etc/passwd: its home, and the upgrader root owned by it', async () => {
    const root = await tmp();
    await fs.mkdir(path.join(root, 'etc'));
    await fs.writeFile(
      path.join(root, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nsvc:x:4242:4343::/srv/svc:/bin/sh\n',
    );
    await fs.writeFile(path.join(root, 'etc', 'group'), 'root:x:0:\nsvcgrp:x:4343:\n');
    const r = await cli(
      ['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system', '--user', 'svc'],
      userEnv(root),
    );
    assert.equal(r.code, 0, r.stderr);
    const unit = await fs.readFile(path.join(root, UNIT), 'utf8');
    assert.match(unit, /^User=svc$/m);
    assert.match(unit, /^Group=svcgrp$/m);
    assert.match(unit, /^Environment=DEFENSECLAW_HOME=\/srv\/svc\/\.defenseclaw$/m);
    if (IS_ROOT) {
      const st = await fs.stat(path.join(root, 'opt', 'defenseclaw-upgrade'));
      assert.deepEqual([st.uid, st.gid], [4242, 4343]);
      assert.equal((await fs.stat(path.join(root, ENV_FILE))).uid, 0);
    }
    // launchd: the daemon's own node reads the env file and writes the log, so both are the account's.
    const mac = await tmp();
    await fs.cp(path.join(root, 'etc'), path.join(mac, 'etc'), {
      recursive: true,
      filter: (p) => !p.includes('defenseclaw-upgrade') && !p.includes('systemd'),
    });
    const m = await cli(
      ['worker', 'install', '--root', mac, '--platform', 'darwin', '--scope', 'system', '--user', 'svc'],
      userEnv(mac),
    );
    assert.equal(m.code, 0, m.stderr);
    assert.match(await fs.readFile(path.join(mac, PLIST), 'utf8'), /<key>UserName<\/key>\s*<string>svc<\/string>/);
    if (IS_ROOT) {
      for (const p of [
        ENV_FILE,
        path.dirname(ENV_FILE),
        'Library/Logs/defenseclaw-upgrade',
        'opt/defenseclaw-upgrade',
      ]) {
        assert.equal((await fs.stat(path.join(mac, p))).uid, 4242, p);
      }
      assert.equal((await fs.stat(path.join(mac, PLIST))).uid, 0);
    }
  });

  it('without --user: the owner of DEFENSECLAW_HOME runs it', async () => {
    const root = await tmp();
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    await fs.mkdir(path.join(root, 'etc'));
    await fs.writeFile(path.join(root, 'etc', 'passwd'), `own:x:${uid}:${gid}::/home/own:/bin/sh\n`);
    await fs.mkdir(path.join(root, 'data', 'dc'), { recursive: true });
    const r = await cli(
      ['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system'],
      userEnv(root, { DEFENSECLAW_HOME: '/data/dc' }),
    );
    assert.equal(r.code, 0, r.stderr);
    const unit = await fs.readFile(path.join(root, UNIT), 'utf8');
    assert.match(unit, /^User=own$/m);
    assert.match(unit, /^Environment=DEFENSECLAW_HOME=\/data\/dc$/m);
    assert.match(unit, /^ReadWritePaths=\/data\/dc \/home\/own\/\.local\/bin -\/home\/own\/\.openclaw$/m);
  });

  it('deploy/defenseclaw-upgrade-worker.service is exactly what install writes for the default settings', async () => {
    const root = await tmp();
    const r = await cli(
      ['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system', '--node', '/usr/bin/node'],
      userEnv(root),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await fs.readFile(path.join(root, UNIT), 'utf8'),
      await fs.readFile(path.join(PKG, 'deploy', 'defenseclaw-upgrade-worker.service'), 'utf8'),
      'regenerate the example: worker install --root DIR --platform linux --scope system --node /usr/bin/node',
    );
  });
});

describe('worker install, launchd', () => {
  it('the plist parses (plistlib) with Label, ProgramArguments, RunAtLoad, KeepAlive, UserName; no secret in it', async () => {
    const root = await tmp();
    const r = await cli(
      [
        'worker',
        'install',
        '--root',
        root,
        '--platform',
        'darwin',
        '--scope',
        'system',
        '--address',
        'temporal.example:7233',
      ],
      userEnv(root, { TEMPORAL_API_KEY: API_KEY }),
    );
    assert.equal(r.code, 0, r.stderr);
    const plistPath = path.join(root, PLIST);
    assert.equal(await mode(plistPath), 0o644);
    const text = await fs.readFile(plistPath, 'utf8');
    assert.ok(!text.includes(API_KEY) && !r.stdout.includes(API_KEY) && !r.stderr.includes(API_KEY));
    const py = await execFileP('python3', [
      '-c',
      'import json,plistlib,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))',
      plistPath,
    ]);
    const job = JSON.parse(py.stdout) as Record<string, unknown>;
    assert.equal(job.Label, 'com.defenseclaw.upgrade-worker');
    assert.deepEqual(job.ProgramArguments, [
      process.execPath,
      '--env-file=/etc/defenseclaw-upgrade/worker.env',
      '/opt/defenseclaw-upgrade/launcher.mjs',
      'worker',
    ]);
    assert.equal(job.RunAtLoad, true);
    assert.equal(job.KeepAlive, true);
    assert.equal(job.UserName, 'defenseclaw');
    assert.equal(job.StandardErrorPath, '/Library/Logs/defenseclaw-upgrade/worker.log');
    assert.equal(
      (job.EnvironmentVariables as Record<string, string>).DEFENSECLAW_HOME,
      '/Users/defenseclaw/.defenseclaw',
    );
    assert.equal(await mode(path.join(root, ENV_FILE)), 0o600);
    assert.match(
      await fs.readFile(path.join(root, ENV_FILE), 'utf8'),
      new RegExp(`^TEMPORAL_API_KEY=${API_KEY}$`, 'm'),
    );
  });

  it("the env file as written is read by Node's --env-file as the plist runs it (quoted values too)", async () => {
    const root = await tmp();
    const check = '["/usr/local/bin/dc-check","--quick"]';
    const r = await cli(
      ['worker', 'install', '--root', root, '--platform', 'darwin', '--scope', 'system'],
      userEnv(root, { TEMPORAL_API_KEY: API_KEY, DEFENSECLAW_UPGRADE_CHECK: check }),
    );
    assert.equal(r.code, 0, r.stderr);
    const p = await execFileP(
      process.execPath,
      [
        `--env-file=${path.join(root, ENV_FILE)}`,
        '-e',
        'process.stdout.write(JSON.stringify([process.env.TEMPORAL_API_KEY, process.env.DEFENSECLAW_UPGRADE_CHECK]))',
      ],
      { env: { PATH: process.env.PATH } },
    );
    assert.deepEqual(JSON.parse(p.stdout), [API_KEY, check]);
  });
});

describe('worker install --dry-run', () => {
  it('writes nothing, prints the files with secrets masked and the commands it would run', async () => {
    const root = await tmp();
    const hostUnitBefore = await exists(HOST_UNIT);
    const r = await cli(
      [
        'worker',
        'install',
        '--dry-run',
        '--platform',
        'linux',
        '--scope',
        'system',
        '--upgrader-root',
        path.join(root, 'up'),
      ],
      userEnv(root, {
        TEMPORAL_ADDRESS: 'temporal.example:7233',
        TEMPORAL_API_KEY: API_KEY,
        GITHUB_TOKEN: 'ghp_' + 'k'.repeat(36),
      }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fs.readdir(root), []);
    assert.ok(!r.stdout.includes(API_KEY) && !r.stderr.includes(API_KEY) && !r.stdout.includes('k'.repeat(36)));
    assert.match(r.stdout, /^TEMPORAL_API_KEY=<set, 40 chars>$/m);
    assert.match(r.stdout, /^GITHUB_TOKEN=<set, 40 chars>$/m);
    assert.match(r.stdout, /^dry run \(nothing written, nothing run\)/);
    assert.match(r.stdout, /^write \/etc\/systemd\/system\/defenseclaw-upgrade-worker\.service \(0644/m);
    assert.match(r.stdout, /^write \/etc\/defenseclaw-upgrade\/worker\.env \(0600, dir 0700, secrets masked\)/m);
    assert.match(r.stdout, /^run {3}systemctl daemon-reload$/m);
    assert.match(r.stdout, /^run {3}systemctl enable --now defenseclaw-upgrade-worker\.service$/m);
    assert.equal(await exists(HOST_UNIT), hostUnitBefore, 'a dry run touched /etc/systemd/system');
  });

  it('darwin: bootstrap in the system domain, and the plist shown without the key', async () => {
    const root = await tmp();
    const r = await cli(
      ['worker', 'install', '--dry-run', '--root', root, '--platform', 'darwin', '--scope', 'system'],
      userEnv(root, { TEMPORAL_API_KEY: API_KEY }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fs.readdir(root), []);
    assert.match(r.stdout, /<key>ProgramArguments<\/key>/);
    assert.ok(!r.stdout.includes(API_KEY));
    // --root runs no launchctl: the plan says so by naming none.
    assert.doesNotMatch(r.stdout, /launchctl/);
  });
});

describe('an existing service', () => {
  it('other settings: refused with a diff (secrets masked), nothing changed; --force replaces; identical: nothing to do', async () => {
    const root = await tmp();
    const base = [
      'worker',
      'install',
      '--root',
      root,
      '--platform',
      'linux',
      '--scope',
      'system',
      '--address',
      'temporal.example:7233',
    ];
    const env = userEnv(root, { TEMPORAL_API_KEY: API_KEY });
    assert.equal((await cli([...base, '--host', 'gw-01'], env)).code, 0);
    const before = await snapshot(root);

    const same = await cli([...base, '--host', 'gw-01'], env);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /^already installed, nothing to do/);
    assert.deepEqual(await snapshot(root), before);

    const newKey = 'tk_' + 'Y8p'.repeat(12) + 'y';
    const other = await cli([...base, '--host', 'gw-02', '--node', '/opt/node-22/bin/node'], {
      ...env,
      TEMPORAL_API_KEY: newKey,
    });
    assert.equal(other.code, 1, other.stderr);
    assert.match(
      other.stderr,
      /^defenseclaw-upgrade: a worker service is already installed with other settings .*--force replaces it\n$/,
    );
    assert.match(other.stdout, /^-DEFENSECLAW_HOST=gw-01$/m);
    assert.match(other.stdout, /^\+DEFENSECLAW_HOST=gw-02$/m);
    assert.match(other.stdout, /^-TEMPORAL_API_KEY=<set, 40 chars>$/m);
    assert.match(other.stdout, /^\+TEMPORAL_API_KEY=<set, 40 chars, changed>$/m);
    assert.match(other.stdout, /^\+ExecStart=\/opt\/node-22\/bin\/node /m);
    for (const s of [API_KEY, newKey]) assert.ok(!other.stdout.includes(s) && !other.stderr.includes(s));
    assert.deepEqual(await snapshot(root), before, 'a refused install changed files');

    const forced = await cli([...base, '--host', 'gw-02', '--force'], { ...env, TEMPORAL_API_KEY: newKey });
    assert.equal(forced.code, 0, forced.stderr);
    const envText = await fs.readFile(path.join(root, ENV_FILE), 'utf8');
    assert.match(envText, /^DEFENSECLAW_HOST=gw-02$/m);
    assert.match(envText, new RegExp(`^TEMPORAL_API_KEY=${newKey}$`, 'm'));
  });

  it('an env file written by hand (the old instructions) is not overwritten without --force', async () => {
    const root = await tmp();
    await fs.mkdir(path.join(root, path.dirname(ENV_FILE)), { recursive: true, mode: 0o700 });
    await fs.writeFile(path.join(root, ENV_FILE), `TEMPORAL_ADDRESS=old.example:7233\nTEMPORAL_API_KEY=${API_KEY}\n`, {
      mode: 0o600,
    });
    const before = await snapshot(root);
    const r = await cli(
      [
        'worker',
        'install',
        '--root',
        root,
        '--platform',
        'linux',
        '--scope',
        'system',
        '--address',
        'new.example:7233',
      ],
      userEnv(root),
    );
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^-TEMPORAL_ADDRESS=old\.example:7233$/m);
    assert.match(r.stdout, /^-TEMPORAL_API_KEY=<set, 40 chars>$/m);
    assert.ok(!r.stdout.includes(API_KEY));
    assert.deepEqual(await snapshot(root), before);
  });
});

describe('refusals: one line, nothing written', () => {
  it('system scope as a non-root user', async () => {
    const home = await tmp();
    const r = await cliAsNobody(['worker', 'install', '--platform', 'linux', '--scope', 'system'], home);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(
      r.stderr,
      'defenseclaw-upgrade: a system-scope service needs root: run it as root, or install for this user with --scope user\n',
    );
    assert.deepEqual(await fs.readdir(home), []);
    // Without --scope: a user service for a non-root user, a system one for root.
    const asUser = await cliAsNobody(['worker', 'install', '--dry-run', '--platform', 'linux'], home);
    assert.equal(asUser.code, 0, asUser.stderr);
    assert.match(asUser.stdout, /^dry run \(nothing written, nothing run\): systemd user service, runs as /);
    assert.match(asUser.stdout, /^run {3}systemctl --user enable --now defenseclaw-upgrade-worker\.service$/m);
    if (IS_ROOT) {
      const asRoot = await cli(['worker', 'install', '--dry-run', '--platform', 'linux'], userEnv(home));
      assert.match(
        asRoot.stdout,
        /^dry run \(nothing written, nothing run\): systemd system service, runs as defenseclaw/,
      );
    }
    assert.deepEqual(await fs.readdir(home), []);
  });

  it('a --root the user cannot write', async () => {
    const root = await tmp(); // root-owned 0755 when this runs as root: nobody cannot write it
    if (!IS_ROOT) await fs.chmod(root, 0o555);
    const r = await cliAsNobody(
      ['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system'],
      root,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^defenseclaw-upgrade: cannot write .* is not writable for this user\): run as root, or use --scope user\n$/,
    );
    assert.deepEqual(await fs.readdir(root), []);
  });

  it('a host without systemctl, or without launchctl (this Linux host)', async () => {
    const home = await tmp();
    const noSystemctl = await cli(['worker', 'install', '--platform', 'linux', '--scope', 'user'], {
      ...userEnv(home),
      PATH: path.join(home, 'empty-bin'),
    });
    assert.equal(noSystemctl.code, 1);
    assert.match(noSystemctl.stderr, /^defenseclaw-upgrade: this host has no systemd \(no systemctl on PATH\)/);
    const noLaunchctl = await cli(['worker', 'install', '--platform', 'darwin', '--scope', 'user'], userEnv(home));
    assert.equal(noLaunchctl.code, 1);
    assert.match(noLaunchctl.stderr, /^defenseclaw-upgrade: this host has no launchd \(no launchctl on PATH\)/);
    assert.deepEqual(await fs.readdir(home), []);
  });

  it('usage: bad --platform, --scope, --host, --address, --api-key-env: exit 2', async () => {
    const root = await tmp();
    const cases: Array<[string[], RegExp]> = [
      [['--platform', 'windows'], /--platform/],
      [['--scope', 'global'], /--scope/],
      [['--host', 'gw 01'], /invalid host "gw 01"/],
      [['--address', 'http://x'], /--address must be host:port/],
      [['--api-key-env', 'NOPE_NOT_SET'], /--api-key-env NOPE_NOT_SET: that variable is not set/],
      [['--upgrader-root', '/opt/my root'], /the upgrader root "\/opt\/my root" has characters/],
      [['--scope', 'user', '--user', 'bob'], /--user names the account of a system-scope service/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(['worker', 'install', '--root', root, '--platform', 'linux', ...args], userEnv(root));
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('(run with')).length,
        1,
        r.stderr,
      );
    }
    assert.deepEqual(await fs.readdir(root), []);
  });

  it('--api-key-env NAME takes the key from that variable, never from the command line', async () => {
    const root = await tmp();
    const r = await cli(
      ['worker', 'install', '--root', root, '--platform', 'linux', '--scope', 'system', '--api-key-env', 'CLOUD_KEY'],
      userEnv(root, { CLOUD_KEY: API_KEY }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      await fs.readFile(path.join(root, ENV_FILE), 'utf8'),
      new RegExp(`^TEMPORAL_API_KEY=${API_KEY}$`, 'm'),
    );
    assert.ok(!r.stdout.includes(API_KEY));
  });

  it('a package without its launcher', async () => {
    const pkg = await tmp();
    await fs.copyFile(path.join(PKG, 'package.json'), path.join(pkg, 'package.json'));
    await fs.symlink(path.join(PKG, 'node_modules'), path.join(pkg, 'node_modules'));
    await fs.cp(path.join(PKG, 'dist'), path.join(pkg, 'dist'), {
      recursive: true,
      filter: (src) =>
        !src.startsWith(path.join(PKG, 'dist', 'test')) &&
        !src.startsWith(path.join(PKG, 'dist', 'worker', 'launcher')),
    });
    const root = await tmp();
    let r: CliRun;
    try {
      const p = await execFileP(
        process.execPath,
        [
          path.join(pkg, 'dist', 'client', 'main.js'),
          'worker',
          'install',
          '--root',
          root,
          '--platform',
          'linux',
          '--scope',
          'system',
        ],
        { env: userEnv(root) },
      );
      r = { code: 0, stdout: p.stdout, stderr: p.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      r = { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^defenseclaw-upgrade: this package has no launcher \(.*dist\/worker\/launcher\/launcher\.js is missing\): build or reinstall the package\n$/,
    );
    assert.deepEqual(await fs.readdir(root), []);
  });
});

describe('worker uninstall and status', () => {
  it('status reads the unit, the links, a pending switch and the last revert; uninstall removes the unit, --purge the env file', async () => {
    const root = await tmp();
    const env = userEnv(root);
    const where = ['--root', root, '--platform', 'linux', '--scope', 'system'];
    const none = await cli(['worker', 'status', ...where, '--json'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.equal((JSON.parse(none.stdout) as { installed: boolean }).installed, false);

    assert.equal((await cli(['worker', 'install', ...where, '--upgrader-root', '/srv/dcu'], env)).code, 0);
    const up = path.join(root, 'srv', 'dcu');
    await fs.writeFile(
      path.join(up, 'switch.json'),
      JSON.stringify({
        schema: 1,
        from: VERSION,
        to: '9.9.9',
        startedAt: '2026-12-06T04:00:00Z',
        deadlineSeconds: 120,
      }),
    );
    await fs.writeFile(
      path.join(up, 'reverts.jsonl'),
      `${JSON.stringify({ at: 'a', from: '9.9.8', to: VERSION, reason: 'old' })}\n${JSON.stringify({ at: '2026-12-06T04:01:00Z', from: '9.9.9', to: VERSION, reason: 'never polled' })}\n`,
    );
    await fs.symlink('versions/0.0.9', path.join(up, 'previous'));
    const before = await snapshot(root);
    // Status finds the upgrader root from the installed unit itself (no --upgrader-root here).
    const s = await cli(['worker', 'status', ...where, '--json'], env);
    assert.equal(s.code, 0, s.stderr);
    const st = JSON.parse(s.stdout) as Record<string, unknown>;
    assert.equal(st.installed, true);
    assert.equal(st.upgraderRoot, '/srv/dcu');
    assert.equal(st.current, VERSION);
    assert.equal(st.previous, '0.0.9');
    assert.deepEqual(st.envFile, { path: '/etc/defenseclaw-upgrade/worker.env', present: true, mode: '0600' });
    assert.deepEqual(st.pendingSwitch, {
      from: VERSION,
      to: '9.9.9',
      startedAt: '2026-12-06T04:00:00Z',
      deadlineSeconds: 120,
    });
    assert.deepEqual(st.lastRevert, { at: '2026-12-06T04:01:00Z', from: '9.9.9', to: VERSION, reason: 'never polled' });
    const text = await cli(['worker', 'status', ...where], env);
    assert.match(text.stdout, /^service: {3}installed \(systemd, system scope\)/);
    assert.match(text.stdout, /^reverted: {2}9\.9\.9 -> .* never polled$/m);
    assert.deepEqual(await snapshot(root), before, 'status changed files');

    const dry = await cli(['worker', 'uninstall', ...where, '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(await snapshot(root), before, 'uninstall --dry-run changed files');

    const u = await cli(['worker', 'uninstall', ...where], env);
    assert.equal(u.code, 0, u.stderr);
    await assert.rejects(fs.access(path.join(root, UNIT)));
    await fs.access(path.join(root, ENV_FILE));
    await fs.access(path.join(up, 'launcher.mjs'));
    const again = await cli(['worker', 'uninstall', ...where], env);
    assert.match(again.stdout, /^not installed, nothing to do/);
    const purge = await cli(['worker', 'uninstall', ...where, '--purge'], env);
    assert.equal(purge.code, 0, purge.stderr);
    await assert.rejects(fs.access(path.join(root, ENV_FILE)));
  });
});

describe('`worker` without a subcommand still runs the foreground worker', () => {
  it('parses --with-workflows and --host and goes on to connect', async () => {
    const home = await tmp();
    const r = await cli(
      ['worker', '--with-workflows', '--host', 'h1'],
      userEnv(home, { TEMPORAL_ADDRESS: '127.0.0.1:1', DEFENSECLAW_HOME: path.join(home, 'dc') }),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
    const bad = await cli(['worker', 'frobnicate'], userEnv(home));
    assert.equal(bad.code, 2);
    for (const sub of ['install', 'uninstall', 'status']) {
      const h = await cli(['worker', sub, '--help'], userEnv(home));
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, new RegExp(`^Usage: defenseclaw-upgrade worker ${sub} \\[options\\]`));
    }
  });
});

describe('the installed service runs', () => {
  it("ExecStart as written, with the unit's Environment= and EnvironmentFile=: the launcher runs this package's worker, which polls", async () => {
    const temporal = await startTestEnvironment();
    const home = await tmp();
    const up = path.join(home, 'up');
    await fs.mkdir(path.join(home, '.defenseclaw'));
    // --root /: the real paths (all under this test's HOME and --upgrader-root), and no systemctl.
    const r = await cli(
      [
        'worker',
        'install',
        '--root',
        '/',
        '--platform',
        'linux',
        '--scope',
        'user',
        '--upgrader-root',
        up,
        '--address',
        temporal.address,
        '--host',
        'svc-e2e',
      ],
      userEnv(home),
    );
    assert.equal(r.code, 0, r.stderr);
    const unit = await fs.readFile(
      path.join(home, '.config', 'systemd', 'user', 'defenseclaw-upgrade-worker.service'),
      'utf8',
    );
    const execStart = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(' ');
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    for (const m of unit.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!;
    const envFile = /^EnvironmentFile=(.+)$/m.exec(unit)![1]!;
    for (const m of (await fs.readFile(envFile, 'utf8')).matchAll(/^([A-Z_]+)='?(.*?)'?$/gm)) env[m[1]!] = m[2]!;
    const launcher = spawn(execStart[0]!, execStart.slice(1), { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    launcher.stdout.on('data', (d) => (log += String(d)));
    launcher.stderr.on('data', (d) => (log += String(d)));
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
    try {
      const queue = 'defenseclaw-upgrade@svc-e2e';
      let identity: string | undefined;
      const deadline = Date.now() + 90_000;
      while (!identity && Date.now() < deadline) {
        const d = await temporal.client.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name: queue },
          taskQueueType: 2, // activity
        });
        identity = d.pollers?.[0]?.identity ?? undefined;
        if (!identity) await new Promise((res) => setTimeout(res, 500));
      }
      assert.ok(identity, `no poller on ${queue} within 90 s; the launcher said:\n${log}`);
      assert.match(identity, new RegExp(`^defenseclaw-upgrade@${VERSION.replace(/\./g, '\\.')}:host:svc-e2e:\\d+$`));
      // The worker knows it runs under the launcher of this root: it proves itself there.
      const ready = path.join(up, 'ready', VERSION);
      while (!(await exists(ready)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
      assert.ok(await exists(ready), `${ready} not written`);
    } finally {
      launcher.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 30_000)),
      ]);
      if (code === 'timeout') launcher.kill('SIGKILL');
      await temporal.teardown();
      assert.notEqual(code, 'timeout', `the launcher did not stop on SIGTERM:\n${log}`);
    }
  });
});
