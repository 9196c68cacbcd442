/**
 * Issue 17 item 5 (replay): restore_command = bin/pgark-wal-fetch answers without starting Node
 * when the prefetch worker serves it. Recovery's first call (the next timeline's history file,
 * not archived) starts the worker; then the first segment, a segment the worker has not prefetched (one replay took
 * already, asked again as at the end of recovery), a timeline history file that is archived, one
 * that is not (exit 1), the first segment after the end of the archive (exit 1), and that same
 * segment once it has been archived (served: a "not archived" answer is never reused). A call
 * with other options is not answered by the worker (it runs the full wal-fetch). Every served
 * file is byte-identical to what was archived. No PostgreSQL: the calls are made as PostgreSQL
 * makes them (as its OS user, in the data directory, with recovery.signal there).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chownToRunAs, destroyAllClusters, makeSharedTempDir, PROJECT_ROOT, runAsUser, shellQuote } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { fakeSegment } from '../helpers/wal-bytes.js';
import { newUserDir, waitUntil } from '../helpers/wait.js';

const SHELL_FETCH = join(PROJECT_ROOT, 'bin', 'pgark-wal-fetch');
const SEG = 1024 * 1024;
const seg = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

afterAll(async () => {
  await destroyAllClusters();
}, 60_000);

describe('bin/pgark-wal-fetch asks the serving prefetch worker', () => {
  it('answers history files, end-of-archive probes and re-requests in the shell, each from a fresh look at the repository', { timeout: 240_000 }, async () => {
    const work = await makeSharedTempDir('pgark-serve-');
    const repo = await createRepo(join(work, 'repo'));
    const src = await newUserDir(work, 'src');
    const archived = new Map<string, Buffer>();
    const push = async (name: string, bytes: Buffer) => {
      await writeFile(join(src, name), bytes, { mode: 0o600 });
      await chownToRunAs(join(src, name));
      await pgark(['wal-push', join(src, name), '--repo', repo, '--stanza', 'main', '--push-ahead', '0']);
      archived.set(name, bytes);
    };
    for (let n = 3; n <= 8; n++) await push(seg(n), fakeSegment(BigInt(n), { walSegmentSize: SEG }));
    await push('00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'));

    const data = await newUserDir(work, 'data');
    await newUserDir(data, 'pg_wal');
    await writeFile(join(data, 'recovery.signal'), '');
    await chownToRunAs(join(data, 'recovery.signal'));
    // Every Node start of the client goes through this wrapper: which file it was for.
    const starts = join(work, 'node-starts');
    const wrapper = join(work, 'node-counting.sh');
    await writeFile(wrapper, `#!/bin/sh\nprev=\nfor a in "$@"; do [ "$prev" = wal-fetch ] && echo "$a" >> ${shellQuote(starts)}; prev=$a; done\nexec ${shellQuote(process.execPath)} "$@"\n`, { mode: 0o755 });
    await writeFile(starts, '', { mode: 0o666 });
    await chownToRunAs(starts);
    const nodeStarts = async () => (await readFile(starts, 'utf8')).split('\n').filter(Boolean);

    const dest = join(data, 'pg_wal', 'RECOVERYXLOG');
    const call = async (name: string, extra: string[] = []) => {
      const r = await runAsUser('/bin/sh', [SHELL_FETCH, name, 'pg_wal/RECOVERYXLOG', '--repo', repo, '--stanza', 'main', ...extra], { cwd: data, allowFail: true, env: { PGARK_NODE: wrapper } });
      let bytes: Buffer | undefined;
      if (r.code === 0) {
        bytes = await readFile(dest);
        await runAsUser('/bin/rm', ['-f', dest], { cwd: data });
      }
      return { code: r.code, stderr: r.stderr, bytes };
    };

    // Recovery's first call, the probe for the next timeline: the full wal-fetch ("not
    // archived"), which starts the worker (nothing to prefetch yet) and makes it the server.
    const probe = await call('00000003.history');
    expect(probe.code, probe.stderr).toBe(1);
    const first = ['00000003.history'];
    expect(await nodeStarts()).toEqual(first);
    const area = join(data, 'pg_wal', '.pgark', 'prefetch');
    const served: [string, number | null, Buffer | undefined][] = [];
    for (let n = 3; n <= 8; n++) {
      const r = await call(seg(n));
      served.push([seg(n), r.code, r.bytes]);
    }
    // Asked again (PostgreSQL re-reads the last segment at the end of recovery): not in the area any more.
    const again = await call(seg(8));
    served.push([`${seg(8)} again`, again.code, again.bytes]);
    const history = await call('00000002.history');
    served.push(['00000002.history', history.code, history.bytes]);
    for (const [name, code, bytes] of served) {
      expect(code, name).toBe(0);
      expect(bytes?.equals(archived.get(name.split(' ')[0]!)!), name).toBe(true);
    }
    // Not archived: exit 1, answered by the worker.
    const noHistory = await call('00000003.history');
    expect(noHistory.code, noHistory.stderr).toBe(1);
    const end = await call(seg(9));
    expect(end.code, end.stderr).toBe(1);
    expect(await nodeStarts()).toEqual(first);

    // Archived since: the next request looks again and serves it.
    await push(seg(9), fakeSegment(9n, { walSegmentSize: SEG }));
    const later = await call(seg(9));
    expect(later.code, later.stderr).toBe(0);
    expect(later.bytes?.equals(archived.get(seg(9))!)).toBe(true);
    expect(await nodeStarts()).toEqual(first);

    // Other options (restore_command changed): the worker does not answer, the full path does.
    const other = await call('00000004.history', ['--log-level', 'info']);
    expect(other.code, other.stderr).toBe(1);
    expect(await nodeStarts()).toEqual([...first, '00000004.history']);

    // Recovery over (PostgreSQL removed recovery.signal): the worker leaves, taking its lock.
    await runAsUser('/bin/rm', ['-f', join(data, 'recovery.signal')], { cwd: data });
    await waitUntil('the prefetch worker to exit', async () => !(await readFile(join(area, 'serve.lock'), 'utf8').then(() => true, () => false)), 60_000);
  });
});
