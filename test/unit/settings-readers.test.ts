// One table of flag / environment / config-file cases run through the three readers of "which
// repository and stanza does this wal-push archive to": the CLI (commander + src/config, as
// `pgark wal-push` runs it), src/wal/fast-path.cjs (flags and environment only: it abstains when the
// repository comes from the config file, and the CLI answers) and the shell client
// bin/pgark-wal-push (run whole: it answers from a push record only when the record's target
// is the one it resolved). The fast paths must resolve what the CLI resolves, or abstain.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { settingsFrom } from '../../src/cli/context.js';
import { buildProgram } from '../../src/cli/main.js';
import { formatPushRecord, pushRecordDir, pushTarget } from '../../src/wal/fast-path.js';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pgark-readers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fastPath = createRequire(import.meta.url)(join(root, 'src', 'wal', 'fast-path.cjs')) as { callTarget(argv: string[], env: NodeJS.ProcessEnv): string | undefined };

let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, text);
  return p;
}
const GLOBAL = file('[global]\nrepo = /g   # the backup disk\n[db1]\nrepo = /d\n[main]\npush-ahead = 4\n');
const MAIN_OWN = file('[global]\nrepo = /g\n[main]\nrepo = /m\n');
const BROKEN = file('[global]\nrepo /x\n');
/** Comments after section headers (the README's `[main]   # per-stanza overrides`). */
const HEADER_COMMENTS = file('[global]   # defaults\nrepo = /g  # the backup disk\n[db1]\t; per-stanza overrides\nrepo = /d\n');
/** A value of the wrong type: a relative repo (refused by the CLI with file:line; the shell reads no repo from it). */
const RELATIVE_REPO = file('[global]\nrepo = var/lib/pgark\n');
/** A config file and an include directory (config/config-load.ts): *.conf in byte order, later wins. */
const INC_MAIN = file('[global]\nrepo = /g\n[db1]\nrepo = /d\n');
const INC_DIR = join(dir, 'conf.d');
mkdirSync(INC_DIR);
writeFileSync(join(INC_DIR, '10-first.conf'), '[global]  # from conf.d\nrepo = /i10\n');
writeFileSync(join(INC_DIR, '2-second.conf'), '[global]\nrepo = /i2\n[db1]\njobs = 2\n');
writeFileSync(join(INC_DIR, '3-ignored.conf.bak'), '[global]\nrepo = /ignored\n');
writeFileSync(join(INC_DIR, 'README'), 'not a config file\n');
/** The config file of the cases that name none (so that /etc/pgark/pgark.conf is never read). */
const EMPTY = file('');

type Case = [name: string, args: string[], env: Record<string, string>, want: { repo: string; stanza: string } | null, shell?: 'full'];
/**
 * `want`: what the CLI resolves (null: it refuses the call, or names no repository). `shell`:
 * 'full' when bin/pgark-wal-push leaves every such call to the CLI (an include directory is
 * named: it does not read include files).
 */
const CASES: Case[] = [
  ['flag', ['--repo', '/a'], {}, { repo: '/a', stanza: 'main' }],
  ['flags with =', ['--repo=/a', '--stanza=db1'], {}, { repo: '/a', stanza: 'db1' }],
  ['environment', [], { PGARK_REPO: 's3://b/p', PGARK_STANZA: 's2' }, { repo: 's3://b/p', stanza: 's2' }],
  ['flag beats environment', ['--repo', '/f', '--stanza', 'x'], { PGARK_REPO: '/e', PGARK_STANZA: 'y' }, { repo: '/f', stanza: 'x' }],
  ['flag before the path', ['--stanza', 'db1'], { PGARK_REPO: '/e' }, { repo: '/e', stanza: 'db1' }],
  ['config file by flag', ['--config', GLOBAL], {}, { repo: '/g', stanza: 'main' }],
  ['config file, stanza section', ['--config', GLOBAL, '--stanza', 'db1'], {}, { repo: '/d', stanza: 'db1' }],
  ['config file by environment, stanza by environment', [], { PGARK_CONFIG: GLOBAL, PGARK_STANZA: 'db1' }, { repo: '/d', stanza: 'db1' }],
  ['stanza section beats [global]', [], { PGARK_CONFIG: MAIN_OWN }, { repo: '/m', stanza: 'main' }],
  ['environment beats config file', ['--config', MAIN_OWN], { PGARK_REPO: '/e' }, { repo: '/e', stanza: 'main' }],
  ['flag beats config file', ['--config', MAIN_OWN, '--repo', '/f'], {}, { repo: '/f', stanza: 'main' }],
  ['--config flag beats PGARK_CONFIG', ['--config', GLOBAL], { PGARK_CONFIG: MAIN_OWN }, { repo: '/g', stanza: 'main' }],
  ['repeated flag: the last wins', ['--repo', '/a', '--repo', '/b'], {}, { repo: '/b', stanza: 'main' }],
  ['unparsable config file', ['--config', BROKEN], {}, null],
  ['empty PGARK_REPO is refused, not skipped', [], { PGARK_REPO: '', PGARK_CONFIG: GLOBAL }, null],
  ['empty PGARK_STANZA is refused, not "main"', ['--repo', '/a'], { PGARK_STANZA: '' }, null],
  ['empty --repo is refused, not skipped', ['--repo', ''], { PGARK_REPO: '/e' }, null],
  ['empty --stanza= is refused, not skipped', ['--repo', '/a', '--stanza='], { PGARK_STANZA: 'db1' }, null],
  ['comments after section headers', ['--config', HEADER_COMMENTS], {}, { repo: '/g', stanza: 'main' }],
  ['comments after section headers, stanza section', ['--config', HEADER_COMMENTS, '--stanza', 'db1'], {}, { repo: '/d', stanza: 'db1' }],
  ['a relative repo in the file is refused', ['--config', RELATIVE_REPO], {}, null],
  ['include directory by flag: the last file in name order wins', ['--config', INC_MAIN, '--config-include-path', INC_DIR], {}, { repo: '/i2', stanza: 'main' }, 'full'],
  ['include directory by flag with =', ['--config', INC_MAIN, `--config-include-path=${INC_DIR}`], {}, { repo: '/i2', stanza: 'main' }, 'full'],
  ['include directory by environment', [], { PGARK_CONFIG: INC_MAIN, PGARK_CONFIG_INCLUDE_PATH: INC_DIR }, { repo: '/i2', stanza: 'main' }, 'full'],
  ['include directory: the stanza section of the config file beats [global] of a later file', ['--config', INC_MAIN, '--stanza', 'db1'], { PGARK_CONFIG_INCLUDE_PATH: INC_DIR }, { repo: '/d', stanza: 'db1' }, 'full'],
  ['a named include directory that does not exist is refused', ['--config', INC_MAIN, '--config-include-path', join(dir, 'nope')], {}, null],
  ['flag beats an include file', ['--config', INC_MAIN, '--config-include-path', INC_DIR, '--repo', '/f'], {}, { repo: '/f', stanza: 'main' }],
];

/** The CLI: `pgark wal-push <seg> <args>` parsed by the real program, settings as the command resolves them. */
async function viaCli(seg: string, args: string[], env: Record<string, string>): Promise<{ repo: string; stanza: string } | null> {
  const saved = process.env;
  process.env = { ...env };
  try {
    const argv = ['node', 'pgark', 'wal-push', seg, ...args];
    const program = await buildProgram(argv);
    let got: { repo: string; stanza: string } | null = null;
    const push = program.commands.find((c) => c.name() === 'wal-push')!;
    push.action((_path: string, _opts: unknown, cmd: Command) => {
      const s = settingsFrom(cmd);
      got = s.repo === undefined ? null : { repo: s.repo, stanza: s.stanza };
    });
    try {
      await program.parseAsync(argv);
    } catch {
      return null; // refused (a ConfigError)
    }
    return got;
  } finally {
    process.env = saved;
  }
}

/** bin/pgark-wal-push with a push record for `target`: 'record' when it answered from it, else 'full'. */
function viaShell(args: string[], env: Record<string, string>, target: string): 'record' | 'full' {
  const wal = join(dir, `wal${n++}`);
  mkdirSync(pushRecordDir(wal), { recursive: true });
  const seg = join(wal, '000000010000000000000003');
  writeFileSync(seg, Buffer.alloc(1000, 1));
  const st = statSync(seg, { bigint: true });
  writeFileSync(join(pushRecordDir(wal), '000000010000000000000003'), formatPushRecord({ ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, 'a'.repeat(64), target));
  const fakeNode = join(dir, 'no-node');
  writeFileSync(fakeNode, '#!/bin/sh\nexit 99\n', { mode: 0o755 });
  const r = spawnSync(join(root, 'bin', 'pgark-wal-push'), [seg, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, PGARK_NODE: fakeNode, ...env } });
  expect(r.stderr).toBe('');
  if (r.status === 0) return 'record';
  expect(r.status).toBe(99);
  return 'full';
}

describe('the three readers resolve the same repository and stanza', () => {
  it.each(CASES)('%s', async (_name, args, env, want, shell) => {
    const envWithConfig = { PGARK_CONFIG: EMPTY, ...env };
    expect(await viaCli('/x/pg_wal/000000010000000000000003', args, envWithConfig)).toEqual(want);

    // fast-path.cjs: the same target, or none when the repository is not a flag or variable.
    const cjs = fastPath.callTarget(['node', 'pgark', 'wal-push', 'seg', ...args], envWithConfig);
    const fromFile = want !== null && !args.some((a) => a.startsWith('--repo')) && env.PGARK_REPO === undefined;
    if (want === null || fromFile) {
      if (cjs !== undefined && want !== null) expect(cjs).toBe(pushTarget(want.repo, want.stanza));
    } else {
      expect(cjs).toBe(pushTarget(want.repo, want.stanza));
    }
    // A record for another stanza or repository never answers for this call.
    if (want !== null && cjs !== undefined) {
      expect(cjs).not.toBe(pushTarget(want.repo, `${want.stanza}x`));
    }

    // bin/pgark-wal-push: answers from a record of what the CLI resolved, and only from that.
    if (want !== null && shell === 'full') {
      // It leaves the call to the CLI (which resolved `want`), whatever the record.
      for (const [repo, stanza] of [[want.repo, want.stanza], ['/g', want.stanza], ['/d', want.stanza], ['/i10', want.stanza]] as const) {
        expect(viaShell(args, envWithConfig, pushTarget(repo, stanza))).toBe('full');
      }
    } else if (want !== null) {
      expect(viaShell(args, envWithConfig, pushTarget(want.repo, want.stanza))).toBe('record');
      expect(viaShell(args, envWithConfig, pushTarget(want.repo, `${want.stanza}x`))).toBe('full');
      expect(viaShell(args, envWithConfig, pushTarget(`${want.repo}x`, want.stanza))).toBe('full');
    } else {
      // The CLI refuses: the shell must leave the call to it whatever record there is.
      for (const repo of ['/a', '/b', '/e', '/g', '/d', '/m', 'var/lib/pgark', '/i2', '/i10']) {
        for (const stanza of ['main', 'db1', '']) expect(viaShell(args, envWithConfig, pushTarget(repo, stanza))).toBe('full');
      }
    }
  }, 30_000);
});

// Several repositories (issue 18 item 2): a push record says a segment is in one repository, so
// with repo2 / repo3 set anywhere the fast paths leave every call to the CLI, which stores to each.
const MORE_GLOBAL = file('[global]\nrepo2 = /second\n');
const MORE_STANZA = file('[global]\nrepo = /g\n[main]\nrepo2 = s3://b/p   # the other region\n');
const MORE_MODE_ONLY = file('[global]\nrepo = /g\nrepo3-mode = async\n');
const MORE_COMMENTED = file('[global]\nrepo = /g\n# repo2 = /second\n;repo2 = /x\n');
const MORE_INC_DIR = join(dir, 'conf.more.d');
mkdirSync(MORE_INC_DIR);
writeFileSync(join(MORE_INC_DIR, '50-second.conf'), '[global]\n  repo2 = /second\n');

/** The further repositories the CLI resolves for `pgark wal-push <seg> <args>` (null: it refuses). */
async function moreReposViaCli(args: string[], env: Record<string, string>): Promise<string[] | null> {
  const saved = process.env;
  process.env = { ...env };
  try {
    const argv = ['node', 'pgark', 'wal-push', '/x/pg_wal/000000010000000000000003', ...args];
    const program = await buildProgram(argv);
    let got: string[] | null = null;
    program.commands.find((c) => c.name() === 'wal-push')!.action((_p: string, _o: unknown, cmd: Command) => {
      got = settingsFrom(cmd).moreRepos.map((m) => `${m.name}=${m.location}:${m.mode}`);
    });
    try {
      await program.parseAsync(argv);
    } catch {
      return null;
    }
    return got;
  } finally {
    process.env = saved;
  }
}

type MoreCase = [name: string, args: string[], env: Record<string, string>, cli: string[] | null, repo: string];
const MORE_CASES: MoreCase[] = [
  ['--repo2 flag', ['--repo', '/a', '--repo2', '/b'], {}, ['repo2=/b:required'], '/a'],
  ['--repo2= flag', ['--repo', '/a', '--repo2=/b', '--repo2-mode=async'], {}, ['repo2=/b:async'], '/a'],
  ['--repo3 flag alone (priority by number)', ['--repo', '/a', '--repo3', '/c'], {}, ['repo3=/c:required'], '/a'],
  ['PGARK_REPO2', [], { PGARK_REPO: '/a', PGARK_REPO2: '/b', PGARK_REPO2_MODE: 'async' }, ['repo2=/b:async'], '/a'],
  ['repo2 in the config file, repo by flag', ['--repo', '/a', '--config', MORE_GLOBAL], {}, ['repo2=/second:required'], '/a'],
  ['repo2 in the stanza section, repo by environment', ['--config', MORE_STANZA], { PGARK_REPO: '/a' }, ['repo2=s3://b/p:required'], '/a'],
  ['repo2 in the stanza section, repo from the file', ['--config', MORE_STANZA], {}, ['repo2=s3://b/p:required'], '/g'],
  ['repo2 in an include file', ['--repo', '/a', '--config', INC_MAIN, '--config-include-path', MORE_INC_DIR], {}, ['repo2=/second:required'], '/a'],
  ['only a repo3-mode line: the fast paths abstain all the same', ['--repo', '/a', '--config', MORE_MODE_ONLY], {}, [], '/a'],
];

describe('with more than one repository the fast paths leave wal-push to the CLI', () => {
  it.each(MORE_CASES)('%s', async (_name, args, env, cli, repo) => {
    const envWithConfig = { PGARK_CONFIG: EMPTY, ...env };
    expect(await moreReposViaCli(args, envWithConfig)).toEqual(cli);
    expect(fastPath.callTarget(['node', 'pgark', 'wal-push', 'seg', ...args], envWithConfig)).toBeUndefined();
    // A record written for the first repository alone (a push-ahead worker or an agent of before) never answers.
    expect(viaShell(args, envWithConfig, pushTarget(repo, 'main'))).toBe('full');
  }, 30_000);

  it('a commented-out repo2 line is no second repository: the fast paths answer as before', async () => {
    const args = ['--config', MORE_COMMENTED];
    expect(await moreReposViaCli(args, {})).toEqual([]);
    expect(fastPath.callTarget(['node', 'pgark', 'wal-push', 'seg', '--repo', '/g', ...args], {})).toBe(pushTarget('/g', 'main'));
    expect(viaShell(args, {}, pushTarget('/g', 'main'))).toBe('record');
  }, 30_000);

  it('repo2 naming the same location as repo is refused', async () => {
    expect(await moreReposViaCli(['--repo', '/a', '--repo2', '/a'], { PGARK_CONFIG: EMPTY })).toBeNull();
    expect(await moreReposViaCli(['--config', file('[global]\nrepo = /a\nrepo2 = /a\n')], {})).toBeNull();
  });

  it("--repo <repo2's location> over a config file with repo2 works on that one repository (restore from repo2)", async () => {
    expect(await moreReposViaCli(['--config', MORE_STANZA, '--repo', 's3://b/p'], {})).toEqual([]);
    expect(await moreReposViaCli(['--config', MORE_STANZA], { PGARK_REPO: 's3://b/p' })).toEqual([]);
    // Given both on the command line, it is a mistake.
    expect(await moreReposViaCli(['--config', MORE_STANZA, '--repo', 's3://b/p', '--repo2', 's3://b/p'], {})).toBeNull();
  });
});

/** The settings the CLI resolves for `pgark wal-push <seg> <args>` (null: it refuses). */
async function settingsViaCli(args: string[], env: Record<string, string>): Promise<ReturnType<typeof settingsFrom> | null> {
  const saved = process.env;
  process.env = { PGARK_CONFIG: EMPTY, ...env };
  try {
    const argv = ['node', 'pgark', 'wal-push', '/x/pg_wal/000000010000000000000003', ...args];
    const program = await buildProgram(argv);
    let got: ReturnType<typeof settingsFrom> | null = null;
    program.commands.find((c) => c.name() === 'wal-push')!.action((_p: string, _o: unknown, cmd: Command) => {
      got = settingsFrom(cmd);
    });
    try {
      await program.parseAsync(argv);
    } catch {
      return null;
    }
    return got;
  } finally {
    process.env = saved;
  }
}

// Each repository its own store settings: repo2-<store setting> (flag, environment, config file)
// for repo2, the shared one where it has none; the fast paths leave such calls to the CLI.
const OWN_STORE = file('[global]\nrepo = s3://one/p\ns3-endpoint = http://127.0.0.1:9001\ns3-path-style = true\ncipher-key-file = /k1\n' +
  '[main]\nrepo2 = s3://two/p\nrepo2-s3-endpoint = http://127.0.0.1:9002\nrepo2-s3-profile = second\nrepo2-storage-timeout = 9\nrepo2-cipher-key-file = /k2\n');
describe('each repository its own store settings', () => {
  const STORE_CASES: Array<[name: string, args: string[], env: Record<string, string>]> = [
    ['config file', ['--config', OWN_STORE], {}],
    ['flags', ['--repo', 's3://one/p', '--s3-endpoint', 'http://127.0.0.1:9001', '--s3-path-style', 'true', '--repo2', 's3://two/p', '--repo2-s3-endpoint', 'http://127.0.0.1:9002', '--repo2-s3-profile', 'second', '--repo2-storage-timeout', '9'], {}],
    ['environment', [], { PGARK_REPO: 's3://one/p', PGARK_S3_ENDPOINT: 'http://127.0.0.1:9001', PGARK_S3_PATH_STYLE: 'true', PGARK_REPO2: 's3://two/p', PGARK_REPO2_S3_ENDPOINT: 'http://127.0.0.1:9002', PGARK_REPO2_S3_PROFILE: 'second', PGARK_REPO2_STORAGE_TIMEOUT: '9' }],
  ];
  it.each(STORE_CASES)('%s: repo2 has its own, falls back to the shared one, repo keeps its own', async (_name, args, env) => {
    const s = (await settingsViaCli(args, env))!;
    expect(s.driver).toEqual({ 's3-endpoint': 'http://127.0.0.1:9001', 's3-path-style': 'true', 'storage-timeout': '60', 's3-checksum': 'when-required', 's3-put-if-absent': 'if-none-match', 's3-part-size': '16', 'azure-block-size': '8', 'gcs-chunk-size': '16' });
    expect(s.moreRepos.map((m) => [m.name, m.storeSettings])).toEqual([['repo2', { ...s.driver, 's3-endpoint': 'http://127.0.0.1:9002', 's3-profile': 'second', 'storage-timeout': '9' }]]);
    expect(fastPath.callTarget(['node', 'pgark', 'wal-push', 'seg', ...args], { PGARK_CONFIG: EMPTY, ...env })).toBeUndefined();
  });

  it("--repo <repo2's location> over the config file: that call uses repo2's store settings and key", async () => {
    for (const [args, env] of [[['--config', OWN_STORE, '--repo', 's3://two/p'], {}], [['--config', OWN_STORE], { PGARK_REPO: 's3://two/p' }]] as const) {
      const s = (await settingsViaCli([...args], env))!;
      expect(s.moreRepos).toEqual([]);
      expect(s.driver).toMatchObject({ 's3-endpoint': 'http://127.0.0.1:9002', 's3-profile': 'second', 's3-path-style': 'true', 'storage-timeout': '9' });
      expect(s.cipherKeyFile).toBe('/k2');
    }
    // A key given for the call wins.
    expect((await settingsViaCli(['--config', OWN_STORE, '--repo', 's3://two/p', '--cipher-key-file', '/k3'], {}))!.cipherKeyFile).toBe('/k3');
    // repo itself keeps its own.
    const one = (await settingsViaCli(['--config', OWN_STORE], {}))!;
    expect([one.driver['s3-endpoint'], one.cipherKeyFile, one.moreRepos[0]!.cipherKeyFile]).toEqual(['http://127.0.0.1:9001', '/k1', '/k2']);
  });

  it('a repo2 store setting is checked like the shared one', async () => {
    expect((await settingsViaCli(['--repo', '/a', '--repo2', '/b', '--repo2-storage-timeout', '5'], {}))?.moreRepos[0]?.storeSettings['storage-timeout']).toBe('5');
    expect(await settingsViaCli(['--repo', '/a', '--repo2', '/b', '--repo2-storage-timeout', '0'], {})).toBeNull();
    expect(await settingsViaCli(['--config', file('[global]\nrepo = /a\nrepo2 = /b\nrepo2-s3-endpoint = ftp://x\n')], {})).toBeNull();
  });
});
