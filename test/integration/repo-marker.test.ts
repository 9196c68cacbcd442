/**
 * Issue 14, item 3: a repository exists only once `pgark repo create` (or setup) wrote its
 * marker. wal-push, agent, receive and backup on a mistyped path and on an empty existing
 * directory (an unmounted mount point) exit 9 naming the location and `pgark repo create`, and
 * create nothing: no directory, no stanza, no spool, no replication slot. `repo create` then
 * works (idempotently), and a repository written before the marker (a stanza, no marker) keeps
 * working and gets its marker.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { newUserDir } from '../helpers/wait.js';

let work: string;
let c: PgCluster;
let segs: string[];

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-marker-');
  c = await PgCluster.create({ name: 'marker', walSegmentSizeMB: 1, conf: { wal_level: 'replica', wal_keep_size: '64MB' } });
  await c.start();
  await c.psql('CREATE TABLE t AS SELECT generate_series(1, 1000) AS id');
  segs = [await c.switchWal()];
  await c.psql('INSERT INTO t SELECT generate_series(1, 1000)');
  segs.push(await c.switchWal());
}, 120_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const segPath = (name: string): string => join(c.dataDir, 'pg_wal', name);
const slots = async (): Promise<string> => c.psql('SELECT count(*) FROM pg_replication_slots');

/** Every command that writes to a repository, pointed at `repo`. */
function writers(repo: string, spool: string): Array<[string, string[]]> {
  return [
    ['wal-push', ['wal-push', segPath(segs[0]!), '--repo', repo]],
    ['agent', ['agent', '--pgdata', c.dataDir, '--repo', repo]],
    ['receive', ['receive', '--repo', repo, '--dsn', `host=127.0.0.1 port=${c.port} user=postgres`, '--slot', 'marker_test', '--create-slot', '--spool-dir', spool]],
    ['backup', ['backup', '--repo', repo, '--pgdata', c.dataDir, '--no-progress']],
  ];
}

async function expectRefused(repo: string, label: string): Promise<void> {
  const spool = join(work, `spool-${label}`);
  for (const [name, args] of writers(repo, spool)) {
    const r = await pgark(args, { allowFail: true, env: c.clientEnv(), timeoutMs: 60_000 });
    expect(r.code, `${name} on ${label}: ${r.stderr}`).toBe(9);
    expect(r.stderr).toContain(`no pgark repository at '${repo}'`);
    expect(r.stderr).toContain(`pgark repo create --repo ${repo}`);
  }
  expect(existsSync(spool)).toBe(false);
  expect(await slots()).toBe('0');
  expect(await c.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")).toBe('0');
}

describe('a location without the repository marker', () => {
  it('a mistyped path: wal-push, agent, receive and backup exit 9 and create nothing', { timeout: 180_000 }, async () => {
    const typo = join(work, 'var-lib-pgrak', 'repo');
    await expectRefused(typo, 'typo');
    expect(existsSync(join(work, 'var-lib-pgrak'))).toBe(false);
  });

  it('an empty mount point: the same, and the directory stays empty', { timeout: 180_000 }, async () => {
    const mnt = await newUserDir(work, 'mnt-backup');
    await expectRefused(mnt, 'mount');
    expect(await readdir(mnt)).toEqual([]);
  });

  it('pgark repo create makes it a repository (0700, parents too), idempotently; then wal-push works', { timeout: 120_000 }, async () => {
    const repo = join(work, 'created', 'deeper', 'repo');
    const first = await pgark(['repo', 'create', '--repo', repo]);
    expect(first.stdout).toBe(`created pgark repository ${repo}\n`);
    for (const d of [join(work, 'created'), join(work, 'created', 'deeper'), repo]) expect((await stat(d)).mode & 0o777).toBe(0o700);
    expect(await readdir(repo)).toEqual(['.pgark-repository']);
    const marker = await readFile(join(repo, '.pgark-repository'));
    expect((await stat(join(repo, '.pgark-repository'))).mode & 0o777).toBe(0o600);
    expect(marker.toString('latin1')).toMatch(/"kind":"pgark-repository"/);

    const again = await pgark(['repo', 'create', '--repo', repo]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/is already a pgark repository \(created .* by pgark .*\): nothing to do/);
    expect(await readFile(join(repo, '.pgark-repository'))).toEqual(marker); // not rewritten

    const push = await pgark(['wal-push', segPath(segs[0]!), '--repo', repo, '--push-ahead', '0'], { allowFail: true });
    expect(push.code, push.stderr).toBe(0);
    expect(existsSync(join(repo, 'main', 'stanza.json'))).toBe(true); // stanzas are still created on first use
  });

  it('a damaged marker is an integrity error (exit 11), not "no repository"', { timeout: 60_000 }, async () => {
    const repo = await createRepo(await newUserDir(work, 'damaged'));
    const path = join(repo, '.pgark-repository');
    const bytes = await readFile(path);
    bytes[40]! ^= 0x01;
    await rm(path);
    await (await import('node:fs/promises')).writeFile(path, bytes);
    const r = await pgark(['info', '--repo', repo], { allowFail: true });
    expect(r.code, r.stderr).toBe(11);
  });
});

describe('a repository from before the marker', () => {
  it('keeps working and gets its marker on first use; another stanza there is still refused', { timeout: 120_000 }, async () => {
    const repo = await createRepo(await newUserDir(work, 'legacy'));
    expect((await pgark(['wal-push', segPath(segs[0]!), '--repo', repo, '--push-ahead', '0'], { allowFail: true })).code).toBe(0);
    await rm(join(repo, '.pgark-repository')); // what an older pgark left: stanzas, no marker

    const other = await pgark(['info', '--repo', repo, '--stanza', 'other'], { allowFail: true });
    expect(other.code).toBe(9);
    expect(existsSync(join(repo, '.pgark-repository'))).toBe(false);

    const r = await pgark(['wal-push', segPath(segs[1]!), '--repo', repo, '--push-ahead', '0', '--log-level', 'info'], { allowFail: true });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/had stanzas but no marker .* wrote its marker/);
    expect(existsSync(join(repo, '.pgark-repository'))).toBe(true);
    const info = JSON.parse((await pgark(['info', '--repo', repo, '--json'])).stdout) as { wal: { segments: number } };
    expect(info.wal.segments).toBe(2);
    // And the adopted repository now serves other stanzas like any marked one.
    expect((await pgark(['info', '--repo', repo, '--stanza', 'other'], { allowFail: true })).code).toBe(8);
  });
});
