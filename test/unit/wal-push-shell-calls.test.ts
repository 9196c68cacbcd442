// bin/pgark-wal-push answering from push records (written here as pgark writes them) at the
// smallest cost per call: what it may run, its `.target-<digits>` cache of the repository and
// stanza it hashed, the wait for a record while a live process holds the segment's lock or a
// live agent has yet to pick up a ready segment, and the agent's removal of a leftover `.wake` FIFO.
// (Which repository a call resolves to: settings-readers.test.ts; with the agent and
// PostgreSQL: test/integration/wal-agent.test.ts.)
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_REPOS } from '../../src/config/schema.js';
import { formatPushRecord, pushRecordDir, pushTarget } from '../../src/wal/fast-path.js';

const root = join(import.meta.dirname, '..', '..');
const client = join(root, 'bin', 'pgark-wal-push');
const dir = mkdtempSync(join(tmpdir(), 'pgark-shell-calls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fakeNode = join(dir, 'no-node');
writeFileSync(fakeNode, '#!/bin/sh\nexit 99\n', { mode: 0o755 });
const SEG = '000000010000000000000007';

/** A bin directory with only the named commands of the system's PATH. */
function binWith(name: string, commands: string[]): string {
  const bin = join(dir, name);
  mkdirSync(bin);
  for (const c of commands) {
    const found = spawnSync('/bin/sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
    expect(found, c).toMatch(/^\//);
    symlinkSync(found, join(bin, c));
  }
  return bin;
}

let n = 0;
function walDir(): string {
  const wal = join(dir, `wal${n++}`);
  mkdirSync(pushRecordDir(wal), { recursive: true, mode: 0o700 });
  writeFileSync(join(wal, SEG), Buffer.alloc(4096, 7));
  return wal;
}

function writeRecord(wal: string, target: string): void {
  const st = statSync(join(wal, SEG), { bigint: true });
  writeFileSync(join(pushRecordDir(wal), SEG), formatPushRecord({ ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, 'a'.repeat(64), target));
}

/** 'record' when the call answered from the record (exit 0), 'full' when it ran the fallback. */
function call(wal: string, args: string[], path = process.env.PATH ?? '/usr/bin:/bin'): 'record' | 'full' {
  const r = spawnSync('/bin/sh', [client, join(wal, SEG), ...args], { encoding: 'utf8', env: { PATH: path, PGARK_NODE: fakeNode } });
  expect(r.stderr).toBe('');
  if (r.status === 0) return 'record';
  expect(r.status).toBe(99);
  return 'full';
}

describe('bin/pgark-wal-push answering from a push record', () => {
  const repo = '/var/lib/pgark repo'; // a blank in it: compared as a whole string
  const target = pushTarget(repo, 'db1');
  const args = ['--repo', repo, '--stanza', 'db1'];

  it('needs only stat once it has hashed the repository and stanza', () => {
    const wal = walDir();
    writeRecord(wal, target);
    expect(call(wal, args)).toBe('record');
    const cache = join(pushRecordDir(wal), `.target-${target}`);
    expect(readFileSync(cache, 'utf8')).toBe(`${repo}\ndb1\n`);
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    // The record is consumed: emptied (no rm process), so it answers no later call.
    expect(readdirSync(pushRecordDir(wal)).sort()).toEqual([`.target-${target}`, SEG]);
    expect(statSync(join(pushRecordDir(wal), SEG)).size).toBe(0);
    expect(call(wal, args)).toBe('full');
    // No sha256sum, readlink, env, grep or rm on this PATH: the cache and builtins answer.
    const bin = binWith('stat-only', ['stat']);
    writeRecord(wal, target);
    expect(call(wal, args, bin)).toBe('record');
    // Still bound to the exact repository and stanza, and to the unchanged file; a record it
    // could not answer from is removed (the agent then stores the segment again).
    const rmBin = binWith('rm-stat', ['rm', 'stat']);
    writeRecord(wal, target);
    expect(call(wal, ['--repo', repo, '--stanza', 'db2'], rmBin)).toBe('full');
    writeRecord(wal, target);
    expect(call(wal, ['--repo', `${repo}/`, '--stanza', 'db1'], rmBin)).toBe('full');
    writeRecord(wal, target);
    expect(call(wal, ['--repo', repo, '--stanza', 'db1', '--repo2', '/x'], rmBin)).toBe('full');
    writeRecord(wal, target);
    writeFileSync(join(wal, SEG), Buffer.alloc(4096, 8));
    expect(call(wal, args, rmBin)).toBe('full');
    expect(readdirSync(pushRecordDir(wal))).toEqual([`.target-${target}`]);
  });

  it('a second repository in the environment (every one up to MAX_REPOS) goes to the full path', () => {
    const wal = walDir();
    for (let i = 2; i <= MAX_REPOS + 1; i++) {
      writeRecord(wal, target);
      const r = spawnSync('/bin/sh', [client, join(wal, SEG), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, PGARK_NODE: fakeNode, [`PGARK_REPO${i}`]: '/y' } });
      // PGARK_REPO<MAX_REPOS + 1> is no setting of pgark: such a call has one repository.
      expect(r.status, `PGARK_REPO${i}`).toBe(i <= MAX_REPOS ? 99 : 0);
    }
  });

  it('a partial cache (a line without its newline) never answers; sha256sum decides', () => {
    const wal = walDir();
    const cache = join(pushRecordDir(wal), `.target-${target}`);
    const bin = binWith('rm-stat-2', ['rm', 'stat']);
    // The cache for target(repo, db1) cut short after "db": a call for stanza "db" must not take it.
    writeFileSync(cache, `${repo}\ndb`, { mode: 0o600 });
    writeRecord(wal, target);
    expect(call(wal, ['--repo', repo, '--stanza', 'db'], bin)).toBe('full');
    // Nor for the call it was being written for (without sha256sum on PATH that is the full path).
    for (const partial of [`${repo}\ndb`, `${repo}\ndb1`, `${repo}\n`, repo]) {
      writeFileSync(cache, partial, { mode: 0o600 });
      writeRecord(wal, target);
      expect(call(wal, args, bin)).toBe('full');
    }
    // With sha256sum the right call answers and rewrites it whole.
    writeRecord(wal, target);
    expect(call(wal, args)).toBe('record');
    expect(readFileSync(cache, 'utf8')).toBe(`${repo}\ndb1\n`);
  });

  it('waits for the record while a live process holds the lock, not after it died', async () => {
    const bin = binWith('rm-stat-sleep', ['rm', 'stat', 'sleep']);
    const wal = walDir();
    writeRecord(wal, target);
    expect(call(wal, args)).toBe('record'); // the cache
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const lock = join(pushRecordDir(wal), `${SEG}.lock`);
      writeFileSync(lock, String(holder.pid));
      const answered = new Promise<number | null>((res) => {
        const c = spawn('/bin/sh', [client, join(wal, SEG), ...args], { stdio: 'ignore', env: { PATH: bin, PGARK_NODE: fakeNode } });
        c.on('exit', (code) => res(code));
      });
      await new Promise((r) => setTimeout(r, 300));
      writeRecord(wal, target);
      rmSync(lock);
      expect(await answered).toBe(0);
      // A holder that is gone: no wait for a record that will not come.
      writeFileSync(lock, '2147483646');
      expect(call(wal, args, bin)).toBe('full');
    } finally {
      holder.kill();
    }
  });
});

describe('the launcher bin/pgark: wal-push through the shell client', () => {
  // archive_command as `pgark setup` writes it ('<launcher>' wal-push %p ...) answers a recorded
  // segment without starting Node, and runs the same full path otherwise.
  const repo = '/var/lib/pgark-launcher';
  const target = pushTarget(repo, 'main');
  const launcher = join(root, 'bin', 'pgark');
  const viaLauncher = (wal: string, args: string[]) =>
    spawnSync(launcher, ['wal-push', join(wal, SEG), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGARK_NODE: fakeNode } });

  it('answers from the record (no Node), consumes it, and the next call takes the full path', () => {
    const wal = walDir();
    writeRecord(wal, target);
    const r = viaLauncher(wal, ['--repo', repo]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(statSync(join(pushRecordDir(wal), SEG)).size).toBe(0);
    expect(viaLauncher(wal, ['--repo', repo]).status).toBe(99);
    // A record for another repository does not answer.
    writeRecord(wal, target);
    expect(viaLauncher(wal, ['--repo', `${repo}-other`]).status).toBe(99);
  });

  it('the full path is the command the launcher runs for every other subcommand: same Node, flags, script and arguments', () => {
    const printer = join(dir, 'print-argv.sh');
    writeFileSync(printer, '#!/bin/sh\nprintf "%s\\n" "$PGARK_LAUNCHER" "$MALLOC_ARENA_MAX" "$@"\n', { mode: 0o755 });
    const run = (args: string[]) => spawnSync(launcher, args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGARK_NODE: printer } }).stdout;
    const wal = walDir();
    const direct = run(['--log-level', 'info', 'wal-push', join(wal, SEG), '--repo', repo]).split('\n');
    const delegated = run(['wal-push', join(wal, SEG), '--repo', repo]).split('\n');
    expect(delegated.slice(0, 4)).toEqual(direct.slice(0, 4)); // launcher, malloc setting, V8 flag, bin/pgark.js
    expect(delegated.slice(4)).toEqual(['wal-push', join(wal, SEG), '--repo', repo, '']);
  });
});

describe('bin/pgark-wal-push waiting for a live agent to pick up a ready segment', () => {
  const repo = '/var/lib/pgark-pickup';
  const target = pushTarget(repo, 'main');
  const args = ['--repo', repo];
  /** A bin directory whose `sleep` logs each start to `<bin>/starts` (stat as the system's). */
  function countingBin(name: string): { bin: string; starts: () => number } {
    const bin = binWith(name, ['stat', 'rm']);
    const log = join(bin, 'starts');
    writeFileSync(log, '');
    const sleep = spawnSync('/bin/sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(bin, 'sleep'), `#!/bin/sh\necho x >> '${log}'\nexec '${sleep}' "$@"\n`, { mode: 0o755 });
    return { bin, starts: () => readFileSync(log, 'utf8').length / 2 };
  }
  const start = (wal: string, bin: string) =>
    new Promise<number | null>((res) => spawn('/bin/sh', [client, join(wal, SEG), ...args], { stdio: 'ignore', env: { PATH: bin, PGARK_NODE: fakeNode } }).on('exit', (code) => res(code)));

  it('polls up to 2 s for the record of a live agent, then the full path; no wait without one', async () => {
    const wal = walDir();
    writeRecord(wal, target);
    expect(call(wal, args)).toBe('record'); // the target cache
    const { bin, starts } = countingBin('count-pickup');
    mkdirSync(join(wal, 'archive_status'), { recursive: true });
    writeFileSync(join(wal, 'archive_status', `${SEG}.ready`), '');
    mkdirSync(join(wal, '.pgark', 'agent'), { recursive: true });
    const agentPid = join(wal, '.pgark', 'agent', 'agent.pid');
    writeFileSync(agentPid, String(process.pid));
    // No lock and no record yet (the emptied one of the first call gone, as the agent prunes it):
    // the agent's round comes; its record answers the call.
    rmSync(join(pushRecordDir(wal), SEG));
    const answered = start(wal, bin);
    for (let i = 0; i < 1000 && starts() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(starts()).toBeGreaterThanOrEqual(1); // it polls
    writeRecord(wal, target);
    expect(await answered).toBe(0);
    // Nothing comes: the full path after the grace (~2 s of polls, each paced by a sleep).
    rmSync(join(pushRecordDir(wal), SEG));
    const t0 = Date.now();
    expect(await start(wal, bin)).toBe(99);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    // Without .ready (not a segment PostgreSQL asks for), or with a dead agent: no wait.
    rmSync(join(wal, 'archive_status', `${SEG}.ready`));
    let n = starts();
    expect(await start(wal, bin)).toBe(99);
    expect(starts()).toBe(n);
    writeFileSync(join(wal, 'archive_status', `${SEG}.ready`), '');
    writeFileSync(agentPid, '2147483646');
    n = starts();
    expect(await start(wal, bin)).toBe(99);
    expect(starts()).toBe(n);
  });
});
