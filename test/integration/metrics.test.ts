/**
 * `pgark metrics` and the drill lines of `pgark info` against real PostgreSQL 15:
 *  1. a cluster archiving with wal-push and one backup, drill reports stored in the repository:
 *     the endpoint serves the backup's age and size, pg_stat_archiver lag (over the libpq
 *     environment), the WAL window and the newest drill; a newer (incomplete) report shows up
 *     after a refresh without a restart; a broken archive_command shows as failing with
 *     segments pending; SIGTERM stops it with exit 0; `pgark info` shows the drills;
 *  2. the agent's endpoint appends the repository metrics;
 *  3. a connection to another cluster is refused per collection (counted), the repository
 *     metrics still served; usage errors.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { openDriver } from '../../storage-drivers/registry.js';
import { Repository } from '../../src/repo/repository.js';
import { drillKey } from '../../src/repo/layout.js';
import { waitUntil } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'met';
const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
let repo: string;
let primary: PgCluster;
let backup: { id: string; type: string; start: { time: string }; stop: { time: string }; size: { original: number; stored: number }; durationMs: number };

/** Store a drill report the way pgark drill does (Repository.putJson at drillKey), readable by the postgres user. */
async function putDrill(report: Record<string, unknown>): Promise<void> {
  const r = new Repository(await openDriver(repo), STANZA, { attempts: 1, budgetMs: 0 });
  try {
    await r.putJson(drillKey(STANZA, String(report.id)), report);
  } finally {
    await r.close();
  }
  await chownToRunAs(repo);
}

/** Samples of one metric: label text -> value. */
function metric(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) out.set(m[1] ?? '', Number(m[2]));
  }
  return out;
}
function one(text: string, name: string): number {
  const m = metric(text, name);
  if (m.size !== 1) throw new Error(`expected one sample of ${name}, got ${m.size}:\n${text}`);
  return [...m.values()][0]!;
}

function portOf(p: BackgroundPgark): number | undefined {
  const m = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(p.output());
  return m ? Number(m[1]) : undefined;
}

async function scrape(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.text();
}

function segmentEndLsn(name: string): number {
  return (Number.parseInt(name.slice(8, 16), 16) * 4096 + Number.parseInt(name.slice(16, 24), 16) + 1) * MB;
}

const passedDrill = {
  id: '20261123-101500D', stanza: STANZA, host: 'db1', startedAt: '2026-11-23T10:15:00.000Z', finishedAt: '2026-11-23T10:15:30.000Z',
  backup: { id: 'x', type: 'full' }, target: { kind: 'latest' }, result: 'passed',
  phases: { restoreSec: 4.1, replaySec: 6, promoteSec: 2.2, checksSec: 1.5 }, rtoSec: 12.3,
  rpo: { lastReplayedCommit: '2026-11-23T10:14:00.000Z', newestArchivedCommit: '2026-11-23T10:14:02.000Z', seconds: 2 },
  checks: [{ name: 'pg_amcheck', ok: true, detail: '3 databases' }, { name: 'checks.sql', ok: true, detail: '1 query' }],
};

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-metrics-');
  repo = join(work, 'repo');
  await mkdir(repo, { mode: 0o700 });
  await chownToRunAs(repo);
  await createRepo(repo);
  primary = await PgCluster.create({
    name: 'metrics', walSegmentSizeMB: 1,
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), wal_level: 'replica' },
  });
  await primary.start();
  await primary.psql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat(\'x\', 100) FROM generate_series(1, 20000) g');
  await pgark(['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', primary.dataDir, '--no-progress'], { env: primary.clientEnv() });
  await primary.waitForArchived(await primary.switchWal());
  const list = (await pgarkJson<{ backups: Array<typeof backup> }>(['list', '--repo', repo, '--stanza', STANZA])).backups;
  expect(list).toHaveLength(1);
  backup = list[0]!;
}, 180_000);

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe('pgark metrics', () => {
  it('serves backup, archiver, WAL window and drill metrics; refreshes; stops on SIGTERM with 0', { timeout: 120_000 }, async () => {
    const before = await pgark(['info', '--repo', repo, '--stanza', STANZA]);
    expect(before.stdout).toMatch(/^ {2}drills: none stored /m);
    expect((await pgarkJson<{ drills: unknown }>(['info', '--repo', repo, '--stanza', STANZA])).drills).toEqual({ count: 0 });
    await putDrill({ ...passedDrill, id: '20261122-101500D', startedAt: '2026-11-22T10:15:00.000Z', finishedAt: '2026-11-22T10:16:00.000Z' });
    await putDrill(passedDrill);
    const lastArchived = (await primary.archiverStats()).last_archived_wal!;
    const m = startPgark(['metrics', '--repo', repo, '--stanza', STANZA, '--port', '0', '--refresh', '1'], primary.clientEnv());
    try {
      await waitUntil('the metrics endpoint', async () => portOf(m) !== undefined, 60_000, m.output);
      const port = portOf(m)!;
      expect(m.output()).toContain('pg_stat_archiver over the configured connection');
      const t0 = Date.now();
      const text = await scrape(port);
      const L = `{stanza="${STANZA}"}`;

      // Backups: the one taken, its size, type, age and duration.
      expect(one(text, 'pgark_backups')).toBe(1);
      expect(metric(text, 'pgark_backup_last_info').get(`{stanza="${STANZA}",id="${backup.id}",type="full"}`)).toBe(1);
      expect(one(text, 'pgark_backup_last_size_bytes')).toBe(backup.size.original);
      expect(one(text, 'pgark_backup_last_stored_bytes')).toBe(backup.size.stored);
      expect(one(text, 'pgark_backup_last_duration_seconds')).toBeCloseTo(backup.durationMs / 1000, 2);
      expect(one(text, 'pgark_backup_last_completion_timestamp_seconds')).toBe(Date.parse(backup.stop.time) / 1000);
      const age = one(text, 'pgark_backup_last_age_seconds');
      expect(age).toBeGreaterThanOrEqual(0);
      expect(age).toBeLessThanOrEqual((t0 - Date.parse(backup.stop.time)) / 1000 + 5);
      expect(one(text, 'pgark_backup_last_full_age_seconds')).toBe(age);

      // pg_stat_archiver over PGHOST/PGPORT: archiving works, nothing pending.
      expect(one(text, 'pgark_archiver_archived_total')).toBeGreaterThanOrEqual(3);
      expect(one(text, 'pgark_archiver_failed_total')).toBe(0);
      expect(one(text, 'pgark_archiver_failing')).toBe(0);
      expect(one(text, 'pgark_archiver_pending_segments')).toBe(0);
      expect(one(text, 'pgark_archiver_last_archived_age_seconds')).toBeLessThan(120);
      expect(metric(text, 'pgark_archiver_last_failed_age_seconds').size).toBe(0);
      expect(one(text, 'pgark_server_in_recovery')).toBe(0);

      // The repository's WAL: the newest segment is the one PostgreSQL archived last; the window
      // runs from the backup's start to when that segment was stored.
      expect(one(text, 'pgark_wal_newest_segment_end_lsn_bytes')).toBe(segmentEndLsn(lastArchived));
      expect(one(text, 'pgark_wal_newest_segment_timeline')).toBe(1);
      expect(one(text, 'pgark_wal_segments')).toBeGreaterThanOrEqual(3);
      const newestAt = one(text, 'pgark_wal_newest_segment_timestamp_seconds');
      expect(one(text, 'pgark_wal_window_start_timestamp_seconds')).toBe(Date.parse(backup.start.time) / 1000);
      expect(one(text, 'pgark_wal_window_seconds')).toBeCloseTo(newestAt - Date.parse(backup.start.time) / 1000, 2);
      expect(one(text, 'pgark_wal_window_seconds')).toBeGreaterThan(0);

      // The newest drill (of two).
      expect(one(text, 'pgark_drills')).toBe(2);
      expect(one(text, 'pgark_drill_last_passed')).toBe(1);
      expect(one(text, 'pgark_drill_last_rto_seconds')).toBe(12.3);
      expect(one(text, 'pgark_drill_last_rpo_seconds')).toBe(2);
      expect(one(text, 'pgark_drill_last_timestamp_seconds')).toBe(Date.parse(passedDrill.finishedAt) / 1000);
      expect(metric(text, 'pgark_drill_last_phase_seconds')).toEqual(new Map([
        [`{stanza="${STANZA}",phase="restore"}`, 4.1], [`{stanza="${STANZA}",phase="replay"}`, 6],
        [`{stanza="${STANZA}",phase="promote"}`, 2.2], [`{stanza="${STANZA}",phase="checks"}`, 1.5],
      ]));
      expect(one(text, 'pgark_drill_last_passed_timestamp_seconds')).toBe(Date.parse(passedDrill.finishedAt) / 1000);

      // Health of the collector itself.
      expect(metric(text, 'pgark_metrics_up')).toEqual(new Map([[`{stanza="${STANZA}",source="repository"}`, 1], [`{stanza="${STANZA}",source="postgres"}`, 1]]));
      expect(metric(text, 'pgark_metrics_collect_errors_total')).toEqual(new Map([[`{stanza="${STANZA}",source="repository"}`, 0], [`{stanza="${STANZA}",source="postgres"}`, 0]]));
      expect(text).toMatch(new RegExp(`^pgark_metrics_last_collect_timestamp_seconds\\{stanza="${STANZA}",source="repository"\\} \\d+(\\.\\d+)?$`, 'm'));
      expect(text).toMatch(/^# TYPE pgark_archiver_failed_total counter$/m);
      expect(text).toMatch(/^# HELP pgark_backup_last_age_seconds /m);
      expect(text.split('\n').filter((l) => l && !l.startsWith('#')).every((l) => l.includes(L.slice(0, -1)))).toBe(true);

      // A newer drill that failed, with a report missing most fields: served after a refresh;
      // the last passed drill is still the older one.
      await putDrill({ id: '20261123-111500D', result: 'failed', failure: 'recovery ended before the target', finishedAt: '2026-11-23T11:16:00.000Z' });
      let later = '';
      await waitUntil('the new drill in the metrics', async () => one((later = await scrape(port)), 'pgark_drills') === 3, 30_000, m.output);
      expect(one(later, 'pgark_drill_last_passed')).toBe(0);
      expect(metric(later, 'pgark_drill_last_rto_seconds').size).toBe(0);
      expect(metric(later, 'pgark_drill_last_rpo_seconds').size).toBe(0);
      expect(metric(later, 'pgark_drill_last_phase_seconds').size).toBe(0);
      expect(one(later, 'pgark_drill_last_passed_timestamp_seconds')).toBe(Date.parse(passedDrill.finishedAt) / 1000);

      // Archiving breaks: the archiver fails and completed segments pile up.
      await primary.psql("ALTER SYSTEM SET archive_command = 'false'; SELECT pg_reload_conf()");
      await sleep(300);
      await primary.psql("INSERT INTO t SELECT g, 'y' FROM generate_series(20001, 20100) g; SELECT pg_switch_wal()");
      await primary.psql("INSERT INTO t SELECT g, 'y' FROM generate_series(20101, 20200) g; SELECT pg_switch_wal()");
      await waitUntil('the failing archiver in the metrics', async () => {
        const t = await scrape(port);
        return one(t, 'pgark_archiver_failing') === 1 && one(t, 'pgark_archiver_failed_total') >= 1 && one(t, 'pgark_archiver_pending_segments') >= 2;
      }, 60_000, m.output);
      const broken = await scrape(port);
      expect(one(broken, 'pgark_archiver_last_failed_age_seconds')).toBeLessThan(60);
      // Exactly the two segments completed by the switches: not the one being written.
      expect(one(broken, 'pgark_archiver_pending_segments')).toBe(2);
      // The repository's newest segment has not moved.
      expect(one(broken, 'pgark_wal_newest_segment_end_lsn_bytes')).toBe(segmentEndLsn(lastArchived));

      expect(await stopPgark(m)).toBe(0);
    } finally {
      await stopPgark(m, 'SIGKILL');
      await primary.psql(`ALTER SYSTEM RESET archive_command; SELECT pg_reload_conf()`);
    }

    // pgark info: the drill count and the newest drill.
    const info = await pgarkJson<{ drills: { count: number; last?: { id: string; result?: string; failure?: string } } }>(['info', '--repo', repo, '--stanza', STANZA]);
    expect(info.drills).toEqual({ count: 3, last: { id: '20261123-111500D', result: 'failed', failure: 'recovery ended before the target', finishedAt: '2026-11-23T11:16:00.000Z', phases: {}, rpo: {} } });
    const human = await pgark(['info', '--repo', repo, '--stanza', STANZA]);
    expect(human.stdout).toMatch(/^ {2}last drill 20261123-111500D: FAILED: recovery ended before the target, \d+ (s|min|h|d) ago \(3 drill reports stored\)$/m);
  });

  it("the agent's endpoint appends the repository metrics", { timeout: 90_000 }, async () => {
    const a = startPgark(['agent', '--pgdata', primary.dataDir, '--repo', repo, '--stanza', STANZA, '--metrics-port', '0', '--log-level', 'info']);
    try {
      await waitUntil('the agent endpoint', async () => portOf(a) !== undefined, 60_000, a.output);
      let text = '';
      await waitUntil('repository metrics on the agent endpoint', async () => metric((text = await scrape(portOf(a)!)), 'pgark_backups').size === 1, 30_000, a.output);
      expect(text).toMatch(/^pgark_agent_up\{stanza="met"\} 1$/m);
      expect(one(text, 'pgark_backups')).toBe(1);
      expect(one(text, 'pgark_drills')).toBe(3);
      expect(metric(text, 'pgark_backup_last_info').get(`{stanza="${STANZA}",id="${backup.id}",type="full"}`)).toBe(1);
      // No connection: no archiver metrics, and no postgres source.
      expect(text).not.toMatch(/^pgark_archiver_/m);
      expect([...metric(text, 'pgark_metrics_up').keys()]).toEqual([`{stanza="${STANZA}",source="repository"}`]);
      // Every metric family is declared once: the two texts do not clash.
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
      expect(new Set(types).size).toBe(types.length);
      expect(await stopPgark(a)).toBe(0);
    } finally {
      await stopPgark(a, 'SIGKILL');
    }
  });

  it('a connection to another cluster is refused per collection; the repository metrics stay; usage errors', { timeout: 120_000 }, async () => {
    const other = await PgCluster.create({ name: 'metrics-other', walSegmentSizeMB: 1 });
    await other.start();
    const m = startPgark(['metrics', '--repo', repo, '--stanza', STANZA, '--port', '0', '--refresh', '1', '--dsn', `host=127.0.0.1 port=${other.port} user=postgres dbname=postgres`]);
    try {
      await waitUntil('the metrics endpoint', async () => portOf(m) !== undefined, 60_000, m.output);
      let text = '';
      await waitUntil('two failed postgres collections', async () =>
        (metric((text = await scrape(portOf(m)!)), 'pgark_metrics_collect_errors_total').get(`{stanza="${STANZA}",source="postgres"}`) ?? 0) >= 2, 30_000, m.output);
      expect(metric(text, 'pgark_metrics_up').get(`{stanza="${STANZA}",source="postgres"}`)).toBe(0);
      expect(metric(text, 'pgark_metrics_up').get(`{stanza="${STANZA}",source="repository"}`)).toBe(1);
      expect(text).not.toMatch(/^pgark_archiver_/m);
      expect(one(text, 'pgark_backups')).toBe(1);
      expect(m.output()).toMatch(/unable to collect from the postgres: the server connected to is cluster \d+, but stanza 'met' holds cluster \d+/);
      expect(await stopPgark(m)).toBe(0);
    } finally {
      await stopPgark(m, 'SIGKILL');
      await other.destroy();
    }

    const noPort = await pgark(['metrics', '--repo', repo, '--stanza', STANZA], { allowFail: true });
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toMatch(/needs --port/);
    const badRefresh = await pgark(['metrics', '--repo', repo, '--stanza', STANZA, '--port', '0', '--refresh', '0'], { allowFail: true });
    expect(badRefresh.code).toBe(2);
    const password = await pgark(['metrics', '--repo', repo, '--stanza', STANZA, '--port', '0', '--dsn', 'host=127.0.0.1 password=secret'], { allowFail: true });
    expect(password.code).toBe(2);
    expect(password.stderr).toMatch(/must not contain a password/);
    expect(password.stderr).not.toContain('secret');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const taken = await pgark(['metrics', '--repo', repo, '--stanza', STANZA, '--port', String((busy.address() as AddressInfo).port)], { allowFail: true });
      expect(taken.code).toBe(2);
      expect(taken.stderr).toMatch(/unable to listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      busy.close();
    }
    const noStanza = await pgark(['metrics', '--repo', repo, '--stanza', 'nope', '--port', '0'], { allowFail: true });
    expect(noStanza.code).toBe(8);
    expect(noStanza.stderr).toMatch(/stanza 'nope' does not exist/);
  });
});
