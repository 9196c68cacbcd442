// The launcher bin/pgark and restore_command as `pgark restore` (clone, drill, setup) writes it:
// '<launcher>' wal-fetch %f %p ... goes through the shell client bin/pgark-wal-fetch, which takes
// a segment the prefetch worker verified without starting Node, and otherwise runs the very
// command the launcher runs for every other subcommand. (The prefetch worker and PostgreSQL:
// test/integration/wal-fetch-serve.test.ts, wal-fetch-standby.test.ts.)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const launcher = join(root, 'bin', 'pgark');
const dir = mkdtempSync(join(tmpdir(), 'pgark-fetch-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** A "Node" that cannot run anything: a call that reaches it exits 99. */
const noNode = join(dir, 'no-node');
writeFileSync(noNode, '#!/bin/sh\nexit 99\n', { mode: 0o755 });
const SEG = '00000001000000000000000A';
const PATH = process.env.PATH ?? '/usr/bin:/bin';

let n = 0;
/** A pg_wal directory with its (empty) prefetch area. */
function walDir(): string {
  const wal = join(dir, `wal${n++}`);
  mkdirSync(join(wal, '.pgark', 'prefetch'), { recursive: true, mode: 0o700 });
  return wal;
}

function viaLauncher(args: string[], node = noNode) {
  return spawnSync(launcher, args, { encoding: 'utf8', env: { PATH, PGARK_NODE: node } });
}

describe('the launcher bin/pgark: wal-fetch through the shell client', () => {
  it('takes a prefetched segment without starting Node; a segment not prefetched takes the full path', () => {
    const wal = walDir();
    const body = Buffer.alloc(8192, 3);
    writeFileSync(join(wal, '.pgark', 'prefetch', SEG), body);
    const dest = join(wal, 'RECOVERYXLOG');
    const r = viaLauncher(['wal-fetch', SEG, dest, '--repo', '/var/lib/pgark', '--stanza', 'main']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(existsSync(join(wal, '.pgark', 'prefetch', SEG))).toBe(false);
    // Nothing prefetched any more and no worker serving: the full path (Node) runs.
    expect(viaLauncher(['wal-fetch', SEG, dest, '--repo', '/var/lib/pgark', '--stanza', 'main']).status).toBe(99);
  });

  it('--prefetch 0 (as for pg_rewind) never answers from the prefetch area', () => {
    const wal = walDir();
    writeFileSync(join(wal, '.pgark', 'prefetch', SEG), Buffer.alloc(8192, 4));
    const r = viaLauncher(['wal-fetch', SEG, join(wal, 'RECOVERYXLOG'), '--repo', '/var/lib/pgark', '--prefetch', '0']);
    expect(r.status).toBe(99);
    expect(existsSync(join(wal, '.pgark', 'prefetch', SEG))).toBe(true);
  });

  it('the full path is the command the launcher runs for every other subcommand: same Node, flags, script and arguments', () => {
    const printer = join(dir, 'print-argv.sh');
    writeFileSync(printer, '#!/bin/sh\nprintf "%s\\n" "$PGARK_LAUNCHER" "$MALLOC_ARENA_MAX" "$@"\n', { mode: 0o755 });
    const wal = walDir();
    const dest = join(wal, 'RECOVERYXLOG');
    const direct = viaLauncher(['--log-level', 'info', 'wal-fetch', SEG, dest, '--repo', '/r'], printer).stdout.split('\n');
    const delegated = viaLauncher(['wal-fetch', SEG, dest, '--repo', '/r'], printer).stdout.split('\n');
    expect(delegated.slice(0, 4)).toEqual(direct.slice(0, 4)); // launcher, malloc setting, V8 flag, bin/pgark.js
    expect(delegated.slice(4)).toEqual(['wal-fetch', SEG, dest, '--repo', '/r', '']);
  });
});
