/** Prometheus rendering of `pgark metrics`: names, HELP/TYPE, label escaping, values, absent values left out. */
import { describe, expect, it } from 'vitest';
import { archiverMetricsText, collectorMetricsText, escapeLabelValue, PromText, repositoryMetricsText } from '../../src/ops/metrics-text.js';
import type { ArchiverFacts, RepositoryFacts } from '../../src/ops/metrics-model.js';

const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const ago = (sec: number) => NOW - sec * 1000;

/** Sample lines only (no comments), as `name{labels} value`. */
const samples = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));
const names = (text: string) => [...new Set(samples(text).map((l) => l.replace(/[{ ].*$/, '')))];

/** Every family has exactly one HELP and one TYPE line, before its first sample. */
function assertWellFormed(text: string): void {
  expect(text.endsWith('\n')).toBe(true);
  const seen = new Map<string, { help: number; type: number }>();
  for (const line of text.split('\n').filter(Boolean)) {
    const m = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (m) {
      const e = seen.get(m[2]!) ?? { help: 0, type: 0 };
      if (m[1] === 'HELP') e.help++;
      else {
        e.type++;
        expect(['gauge', 'counter']).toContain(m[3]);
      }
      seen.set(m[2]!, e);
      continue;
    }
    expect(line).toMatch(/^pgark_[a-z_]+\{stanza="[^"]*"(,[a-z]+="(?:[^"\\]|\\.)*")*\} -?\d+(\.\d+)?$/);
    const name = line.replace(/[{ ].*$/, '');
    expect(seen.get(name), `HELP/TYPE before ${name}`).toEqual({ help: 1, type: 1 });
  }
}

const full: RepositoryFacts = {
  backups: {
    count: 3,
    last: { id: '20261123-100000I', type: 'incr', startMs: ago(7300), stopMs: ago(7200), durationSec: 100.25, originalBytes: 1_073_741_824, storedBytes: 12_345_678 },
    lastFullStopMs: ago(86_400),
    oldestStartMs: ago(3 * 86_400),
  },
  wal: { segments: 500, storedBytes: 987_654_321, newest: { name: '000000020000000100000003', timeline: 2, endLsn: 0x1_04000000, mtimeMs: ago(30) } },
  drills: {
    count: 4,
    last: {
      id: '20261123-101500D', result: 'passed', finishedAt: new Date(ago(3600)).toISOString(),
      phases: { restoreSec: 4.1, replaySec: 6, promoteSec: 2.2, checksSec: 1.5 }, rtoSec: 12.3,
      rpo: { seconds: 0 }, checks: { total: 3, failed: 0, skipped: 1 },
    },
    lastPassedMs: ago(3600),
  },
};

describe('repositoryMetricsText', () => {
  it('renders every repository metric with HELP, TYPE and the stanza label', () => {
    const text = repositoryMetricsText('main', full, NOW);
    assertWellFormed(text);
    expect(samples(text)).toEqual([
      'pgark_backups{stanza="main"} 3',
      'pgark_backup_last_info{stanza="main",id="20261123-100000I",type="incr"} 1',
      `pgark_backup_last_completion_timestamp_seconds{stanza="main"} ${(NOW - 7_200_000) / 1000}`,
      'pgark_backup_last_age_seconds{stanza="main"} 7200',
      'pgark_backup_last_duration_seconds{stanza="main"} 100.25',
      'pgark_backup_last_size_bytes{stanza="main"} 1073741824',
      'pgark_backup_last_stored_bytes{stanza="main"} 12345678',
      'pgark_backup_last_full_age_seconds{stanza="main"} 86400',
      'pgark_wal_segments{stanza="main"} 500',
      'pgark_wal_stored_bytes{stanza="main"} 987654321',
      'pgark_wal_newest_segment_timeline{stanza="main"} 2',
      'pgark_wal_newest_segment_end_lsn_bytes{stanza="main"} 4362076160',
      `pgark_wal_newest_segment_timestamp_seconds{stanza="main"} ${(NOW - 30_000) / 1000}`,
      'pgark_wal_newest_segment_age_seconds{stanza="main"} 30',
      `pgark_wal_window_start_timestamp_seconds{stanza="main"} ${(NOW - 3 * 86_400_000) / 1000}`,
      `pgark_wal_window_seconds{stanza="main"} ${3 * 86_400 - 30}`,
      'pgark_drills{stanza="main"} 4',
      'pgark_drill_last_passed{stanza="main"} 1',
      `pgark_drill_last_timestamp_seconds{stanza="main"} ${(NOW - 3_600_000) / 1000}`,
      'pgark_drill_last_age_seconds{stanza="main"} 3600',
      'pgark_drill_last_rto_seconds{stanza="main"} 12.3',
      'pgark_drill_last_phase_seconds{stanza="main",phase="restore"} 4.1',
      'pgark_drill_last_phase_seconds{stanza="main",phase="replay"} 6',
      'pgark_drill_last_phase_seconds{stanza="main",phase="promote"} 2.2',
      'pgark_drill_last_phase_seconds{stanza="main",phase="checks"} 1.5',
      'pgark_drill_last_rpo_seconds{stanza="main"} 0',
      'pgark_drill_last_failed_checks{stanza="main"} 0',
      `pgark_drill_last_passed_timestamp_seconds{stanza="main"} ${(NOW - 3_600_000) / 1000}`,
      'pgark_drill_last_passed_age_seconds{stanza="main"} 3600',
    ]);
    expect(text).toMatch(/^# TYPE pgark_backup_last_age_seconds gauge$/m);
    expect(text).toMatch(/^# HELP pgark_wal_window_seconds Span of restorable points in time/m);
  });

  it('ages grow with the scrape time, not the collection time', () => {
    const later = repositoryMetricsText('main', full, NOW + 60_000);
    expect(later).toMatch(/^pgark_backup_last_age_seconds\{stanza="main"\} 7260$/m);
    expect(later).toMatch(/^pgark_drill_last_age_seconds\{stanza="main"\} 3660$/m);
    expect(later).toMatch(/^pgark_wal_newest_segment_age_seconds\{stanza="main"\} 90$/m);
  });

  it.each<[string, RepositoryFacts, string[], string[]]>([
    ['an empty stanza: counts only', { backups: { count: 0 }, wal: { segments: 0, storedBytes: 0 }, drills: { count: 0 } },
      ['pgark_backups', 'pgark_wal_segments', 'pgark_wal_stored_bytes', 'pgark_drills'],
      ['pgark_backup_last_age_seconds', 'pgark_wal_window_seconds', 'pgark_drill_last_passed', 'pgark_backup_last_full_age_seconds']],
    ['WAL but no backup: no window', { ...full, backups: { count: 0 } },
      ['pgark_wal_newest_segment_age_seconds'], ['pgark_wal_window_seconds', 'pgark_wal_window_start_timestamp_seconds', 'pgark_backup_last_info']],
    ['only incrementals left: no full age', { ...full, backups: { ...full.backups, lastFullStopMs: undefined } },
      ['pgark_backup_last_age_seconds'], ['pgark_backup_last_full_age_seconds']],
    ['a failed drill with unknown RPO and RTO', { ...full, drills: { count: 1, last: { id: '20261123-101500D', result: 'failed', failure: 'restore failed', finishedAt: new Date(ago(60)).toISOString(), phases: { restoreSec: 3 }, rpo: { note: 'pg_waldump not found' } } } },
      ['pgark_drill_last_passed', 'pgark_drill_last_phase_seconds'], ['pgark_drill_last_rto_seconds', 'pgark_drill_last_rpo_seconds', 'pgark_drill_last_passed_timestamp_seconds', 'pgark_drill_last_failed_checks']],
    ['an unreadable drill report: count and nothing made up', { ...full, drills: { count: 2, last: { id: '20261123-101500D', phases: {}, rpo: {}, unreadable: 'invalid JSON' } } },
      ['pgark_drills', 'pgark_drill_last_age_seconds', 'pgark_drill_last_timestamp_seconds'], ['pgark_drill_last_passed', 'pgark_drill_last_rto_seconds', 'pgark_drill_last_phase_seconds']],
  ])('%s', (_what, facts, present, absent) => {
    const text = repositoryMetricsText('main', facts, NOW);
    assertWellFormed(text);
    for (const n of present) expect(names(text)).toContain(n);
    for (const n of absent) {
      expect(names(text)).not.toContain(n);
      expect(text).not.toContain(`# HELP ${n} `);
    }
  });

  it('a failed drill reads 0', () => {
    const text = repositoryMetricsText('main', { ...full, drills: { count: 1, last: { id: '20261123-101500D', result: 'failed', phases: {}, rpo: {} } } }, NOW);
    expect(samples(text)).toContain('pgark_drill_last_passed{stanza="main"} 0');
  });

  it('nothing collected yet: nothing at all', () => {
    expect(repositoryMetricsText('main', undefined, NOW)).toBe('');
  });

  it('a window never goes negative (newest segment stored before the oldest backup started)', () => {
    const text = repositoryMetricsText('main', { ...full, wal: { ...full.wal, newest: { ...full.wal.newest!, mtimeMs: ago(4 * 86_400) } } }, NOW);
    expect(samples(text)).toContain('pgark_wal_window_seconds{stanza="main"} 0');
  });
});

describe('archiverMetricsText', () => {
  const base: ArchiverFacts = { archivedCount: 42, failedCount: 0, lastArchivedWal: '000000010000000000000010', lastArchivedMs: ago(12.5), inRecovery: false, pendingSegments: 2 };
  it.each<[string, ArchiverFacts, string[], string[]]>([
    ['archiving fine', base,
      ['pgark_archiver_archived_total{stanza="main"} 42', 'pgark_archiver_failed_total{stanza="main"} 0', 'pgark_archiver_last_archived_age_seconds{stanza="main"} 12.5',
        'pgark_archiver_failing{stanza="main"} 0', 'pgark_archiver_pending_segments{stanza="main"} 2', 'pgark_server_in_recovery{stanza="main"} 0'],
      ['pgark_archiver_last_failed_age_seconds', 'pgark_archiver_last_failed_timestamp_seconds']],
    ['failing now', { ...base, failedCount: 7, lastFailedWal: '000000010000000000000011', lastFailedMs: ago(5) },
      ['pgark_archiver_failing{stanza="main"} 1', 'pgark_archiver_last_failed_age_seconds{stanza="main"} 5', 'pgark_archiver_failed_total{stanza="main"} 7'], []],
    ['failed once, archiving since', { ...base, failedCount: 1, lastFailedMs: ago(600) },
      ['pgark_archiver_failing{stanza="main"} 0', 'pgark_archiver_last_failed_age_seconds{stanza="main"} 600'], []],
    ['never archived, failing', { archivedCount: 0, failedCount: 3, lastFailedMs: ago(1), inRecovery: false },
      ['pgark_archiver_failing{stanza="main"} 1'], ['pgark_archiver_last_archived_age_seconds', 'pgark_archiver_pending_segments']],
    ['a standby: pending unknown', { ...base, inRecovery: true, pendingSegments: undefined },
      ['pgark_server_in_recovery{stanza="main"} 1'], ['pgark_archiver_pending_segments']],
  ])('%s', (_what, facts, present, absentNames) => {
    const text = archiverMetricsText('main', facts, NOW);
    assertWellFormed(text);
    for (const l of present) expect(samples(text)).toContain(l);
    for (const n of absentNames) expect(names(text)).not.toContain(n);
    expect(text).toMatch(/^# TYPE pgark_archiver_failed_total counter$/m);
  });
  it('no connection: nothing', () => {
    expect(archiverMetricsText('main', undefined, NOW)).toBe('');
  });
});

describe('collectorMetricsText', () => {
  it('per source: up, last successful collection, duration, errors', () => {
    const text = collectorMetricsText('main', {
      repository: { okAtMs: ago(10), lastDurationSec: 0.125, errors: 0, failing: false },
      postgres: { okAtMs: ago(70), lastDurationSec: 5, errors: 2, failing: true },
    });
    assertWellFormed(text);
    expect(samples(text)).toEqual([
      'pgark_metrics_up{stanza="main",source="repository"} 1',
      'pgark_metrics_up{stanza="main",source="postgres"} 0',
      `pgark_metrics_last_collect_timestamp_seconds{stanza="main",source="repository"} ${(NOW - 10_000) / 1000}`,
      `pgark_metrics_last_collect_timestamp_seconds{stanza="main",source="postgres"} ${(NOW - 70_000) / 1000}`,
      'pgark_metrics_collect_duration_seconds{stanza="main",source="repository"} 0.125',
      'pgark_metrics_collect_duration_seconds{stanza="main",source="postgres"} 5',
      'pgark_metrics_collect_errors_total{stanza="main",source="repository"} 0',
      'pgark_metrics_collect_errors_total{stanza="main",source="postgres"} 2',
    ]);
    expect(text).toMatch(/^# TYPE pgark_metrics_collect_errors_total counter$/m);
  });
  it('before the first success: up 0, errors, no timestamp', () => {
    const text = collectorMetricsText('main', { repository: { errors: 1, failing: true, lastDurationSec: 60 } });
    expect(samples(text)).toEqual([
      'pgark_metrics_up{stanza="main",source="repository"} 0',
      'pgark_metrics_collect_duration_seconds{stanza="main",source="repository"} 60',
      'pgark_metrics_collect_errors_total{stanza="main",source="repository"} 1',
    ]);
  });
});

describe('label escaping', () => {
  it.each([
    ['plain', 'plain'],
    ['a"b', 'a\\"b'],
    ['back\\slash', 'back\\\\slash'],
    ['two\nlines', 'two\\nlines'],
    ['\\"\n', '\\\\\\"\\n'],
  ])('%j -> %j', (raw, escaped) => {
    expect(escapeLabelValue(raw)).toBe(escaped);
  });
  it('applies to the stanza and to other labels', () => {
    const text = repositoryMetricsText('we"ird\\stanza', { ...full, backups: { ...full.backups, last: { ...full.backups.last!, id: 'x\ny' } } }, NOW);
    expect(text).toContain('pgark_backups{stanza="we\\"ird\\\\stanza"} 3');
    expect(text).toContain('pgark_backup_last_info{stanza="we\\"ird\\\\stanza",id="x\\ny",type="incr"} 1');
  });
});

describe('PromText', () => {
  it('leaves out unknown and non-finite values, and families with none', () => {
    const t = new PromText({ stanza: 's' })
      .gauge('pgark_a', 'A.', undefined)
      .gauge('pgark_b', 'B.', Number.NaN)
      .gauge('pgark_c', 'C.', [{ labels: { k: '1' }, value: undefined }, { labels: { k: '2' }, value: 2 }])
      .counter('pgark_d', 'D with \\ and\nnewline.', 0)
      .text();
    expect(t).toBe('# HELP pgark_c C.\n# TYPE pgark_c gauge\npgark_c{stanza="s",k="2"} 2\n' +
      '# HELP pgark_d D with \\\\ and\\nnewline.\n# TYPE pgark_d counter\npgark_d{stanza="s"} 0\n');
    expect(new PromText({}).text()).toBe('');
  });
  it('rounds fractions to milliseconds', () => {
    expect(new PromText({ stanza: 's' }).gauge('pgark_x', 'X.', 1 / 3).text()).toContain('pgark_x{stanza="s"} 0.333\n');
  });
});
