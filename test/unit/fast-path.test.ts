import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPushRecord, prefetchDirOf, pushTarget, pushLockPath, pushRecordDir, takePrefetched, takePushRecord, walFetchArgsOf, walPushPathOf } from '../../src/wal/fast-path.js';

const SEG = '000000010000000000000007';
const made: string[] = [];
/** A temp dir removed after the file's tests. */
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

describe('walPushPathOf (argv scan of the bin fast path)', () => {
  it.each([
    [['wal-push', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', 'pg_wal/X', '--repo', '/r', '--stanza', 'main'], 'pg_wal/X'],
    [['--repo', '/r', 'wal-push', '--jobs', '2', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', '--repo=/r', 'pg_wal/X'], 'pg_wal/X'],
    [['wal-push', 'pg_wal/X', '--json'], undefined],
    [['wal-push', '--help'], undefined],
    [['wal-push', 'pg_wal/X', '--unknown'], undefined],
    [['wal-fetch', 'A', 'B'], undefined],
    [['wal-push'], undefined],
    [['wal-push', 'a', 'b'], undefined],
    [['--repo', 'wal-push', 'info', 'x'], undefined],
  ])('%j -> %s', (args, want) => {
    expect(walPushPathOf(['node', 'pgark', ...args])).toBe(want);
  });
});

const T = pushTarget('/var/lib/pgark', 'main');

describe('takePushRecord', () => {
  function setup() {
    const wal = tempDir('pgark-rec-');
    const seg = join(wal, SEG);
    writeFileSync(seg, Buffer.alloc(1000, 1));
    mkdirSync(pushRecordDir(wal), { recursive: true });
    const st = statSync(seg, { bigint: true });
    const rec = join(pushRecordDir(wal), SEG);
    writeFileSync(rec, formatPushRecord({ ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, 'a'.repeat(64), T));
    return { seg, rec };
  }
  it('answers once for an unchanged file and consumes the record', async () => {
    const { seg, rec } = setup();
    expect(await takePushRecord(seg, T)).toBe(true);
    expect(existsSync(rec)).toBe(false);
    expect(await takePushRecord(seg, T)).toBe(false);
  });
  it('distrusts a changed file but still consumes the record', async () => {
    const { seg, rec } = setup();
    utimesSync(seg, new Date(), new Date(Date.now() + 5000));
    expect(await takePushRecord(seg, T)).toBe(false);
    expect(existsSync(rec)).toBe(false);
  });
  it('distrusts a file rewritten in place with the same times restored (ctime moves)', async () => {
    const { seg } = setup();
    const st = statSync(seg);
    writeFileSync(seg, Buffer.alloc(1000, 2));
    utimesSync(seg, st.atime, st.mtime);
    expect(statSync(seg, { bigint: true }).mtimeNs).toBe(statSync(seg, { bigint: true }).mtimeNs);
    expect(await takePushRecord(seg, T)).toBe(false);
  });
  it('refuses records of the old JSON format', async () => {
    const { seg, rec } = setup();
    const st = statSync(seg);
    writeFileSync(rec, JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: 'x' }));
    expect(await takePushRecord(seg, T)).toBe(false);
  });
  it('answers only for the repository and stanza the record names', async () => {
    const { seg, rec } = setup();
    expect(await takePushRecord(seg, pushTarget('/var/lib/pgark', 'other'))).toBe(false);
    expect(existsSync(rec)).toBe(false);
    const again = setup();
    expect(await takePushRecord(again.seg, pushTarget('s3://bucket/x', 'main'))).toBe(false);
  });
  it('binds to repository and stanza exactly', () => {
    expect(pushTarget('/r', 'main')).toMatch(/^[0-9a-f]{16}$/);
    expect(pushTarget('/r', 'main')).not.toBe(pushTarget('/r', 'main2'));
  });
  it('ignores non-segment names and missing records', async () => {
    const { seg } = setup();
    expect(await takePushRecord(join(seg, '..', '00000002.history'), T)).toBe(false);
    expect(await takePushRecord(join(seg, '..', '000000010000000000000008'), T)).toBe(false);
  });

  it('waits for a live look-ahead worker, stops waiting for a dead one', async () => {
    const { seg, rec } = setup();
    const wal = join(seg, '..');
    // The lock holder is another process that lives for 300 ms.
    const holder = spawn('sleep', ['0.3']);
    writeFileSync(pushLockPath(wal, SEG), String(holder.pid));
    const t = Date.now();
    expect(await takePushRecord(seg, T, 5000)).toBe(true);
    const waited = Date.now() - t;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(5000);
    writeFileSync(rec, '{}');
    writeFileSync(pushLockPath(wal, SEG), '999999999'); // no such pid
    expect(await takePushRecord(seg, T, 5000)).toBe(false); // record does not match; no wait
  });
});

describe('walFetchArgsOf', () => {
  it.each([
    [['wal-fetch', SEG, 'pg_wal/RECOVERYXLOG'], {}, { name: SEG, dest: 'pg_wal/RECOVERYXLOG' }],
    [['wal-fetch', SEG, 'pg_wal/RECOVERYXLOG', '--repo', '/r'], {}, { name: SEG, dest: 'pg_wal/RECOVERYXLOG' }],
    [['wal-fetch', SEG, 'x', '--prefetch', '0'], {}, undefined],
    [['wal-fetch', SEG, 'x'], { PGARK_PREFETCH: '0' }, undefined],
    [['wal-fetch', SEG], {}, undefined],
    [['wal-push', SEG, 'x'], {}, undefined],
  ])('%j %j', (args, env, want) => {
    expect(walFetchArgsOf(['node', 'pgark', ...args], env)).toEqual(want);
  });
});

describe('takePrefetched', () => {
  it('moves a prefetched segment into place once, and only valid names', () => {
    const wal = tempDir('pgark-pf-');
    const dest = join(wal, 'RECOVERYXLOG');
    mkdirSync(prefetchDirOf(dest), { recursive: true });
    writeFileSync(join(prefetchDirOf(dest), SEG), 'segment bytes');
    expect(takePrefetched('../x', dest)).toBe(false);
    expect(takePrefetched(SEG, dest)).toBe(true);
    expect(readFileSync(dest, 'utf8')).toBe('segment bytes');
    expect(existsSync(join(prefetchDirOf(dest), SEG))).toBe(false);
    expect(takePrefetched(SEG, dest)).toBe(false);
  });
});
