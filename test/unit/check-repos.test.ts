/** check's items for further repositories (check-repos.ts) and the backlog gauges of metrics (metrics-text.ts). */
import { describe, expect, it } from 'vitest';
import { backlogItem, backlogPerf, BACKLOG_LIMITS_DEFAULT, moreRepoItem } from '../../src/ops/check-repos.js';
import { formatPerfData } from '../../src/ops/check-items.js';
import { repositoryMetricsText } from '../../src/ops/metrics-text.js';
import type { RepositoryFacts } from '../../src/ops/metrics-model.js';

const limits = { critMs: 3600_000, critFiles: 10 };
const SEG = '000000010000000000000005';

describe('backlogItem', () => {
  const table: Array<[string, number, number | undefined, 'OK' | 'WARNING' | 'CRITICAL']> = [
    ['empty', 0, undefined, 'OK'],
    ['one file, fresh', 1, 5_000, 'WARNING'],
    ['at the file threshold', 10, 5_000, 'WARNING'],
    ['past the file threshold', 11, 5_000, 'CRITICAL'],
    ['at the age threshold', 2, 3600_000, 'WARNING'],
    ['past the age threshold', 2, 3600_001, 'CRITICAL'],
    ['age unknown', 2, undefined, 'WARNING'],
  ];
  for (const [what, files, ageMs, status] of table) {
    it(what, () => {
      const i = backlogItem('repo2', files, files ? SEG : '', ageMs, limits);
      expect(i.name).toBe('backlog repo2');
      expect(i.status).toBe(status);
      if (files > 0) expect(i.detail).toContain(`repo2 lacks ${files} WAL file`);
    });
  }
  it('names the oldest file and its age', () => {
    expect(backlogItem('repo3', 2, SEG, 125_000, limits).detail).toBe(`repo3 lacks 2 WAL files (oldest ${SEG}, the oldest waiting for 2m05s); wal-push fills it when repo3 is reachable, pgark copy --wal --to repo3 at once`);
  });
  it('defaults: 1 hour, 256 files', () => expect(BACKLOG_LIMITS_DEFAULT).toEqual({ critMs: 3600_000, critFiles: 256 }));
});

describe('backlogPerf', () => {
  it('Nagios perfdata: files warn above 0, crit above the limit; age in seconds', () => {
    expect(formatPerfData(backlogPerf('repo2', 3, 90_500, limits))).toBe('backlog_repo2=3;0;10;0 backlog_repo2_age=91s;;3600;0');
    expect(formatPerfData(backlogPerf('repo2', 0, undefined, limits))).toBe('backlog_repo2=0;0;10;0 backlog_repo2_age=0s;;3600;0');
  });
});

describe('moreRepoItem', () => {
  it('reachable: OK', () => expect(moreRepoItem('repo2', 'required', 's3://b/x', undefined).status).toBe('OK'));
  it('required and unreachable: CRITICAL', () => {
    const i = moreRepoItem('repo2', 'required', 's3://b/x', 'connect ECONNREFUSED');
    expect(i).toMatchObject({ name: 'repo2', status: 'CRITICAL' });
    expect(i.detail).toContain('s3://b/x (required) unreachable: connect ECONNREFUSED');
  });
  it('async and unreachable: WARNING', () => expect(moreRepoItem('repo3', 'async', '/x', 'gone').status).toBe('WARNING'));
});

describe('metrics: backlog gauges', () => {
  const NOW = Date.parse('2026-11-23T12:00:00.000Z');
  const facts = (backlog: RepositoryFacts['backlog']): RepositoryFacts => ({ backups: { count: 0 }, wal: { segments: 0, storedBytes: 0 }, drills: { count: 0 }, ...(backlog ? { backlog } : {}) });
  it('files per repository, and the oldest age only when not empty', () => {
    const text = repositoryMetricsText('main', facts([{ repo: 'repo2', files: 4, oldestMs: NOW - 30_000 }, { repo: 'repo3', files: 0, oldestMs: Number.NaN }]), NOW);
    expect(text).toContain('# TYPE pgark_repo_backlog_files gauge\npgark_repo_backlog_files{stanza="main",repo="repo2"} 4\npgark_repo_backlog_files{stanza="main",repo="repo3"} 0\n');
    expect(text).toContain('pgark_repo_backlog_oldest_age_seconds{stanza="main",repo="repo2"} 30\n');
    expect(text).not.toContain('pgark_repo_backlog_oldest_age_seconds{stanza="main",repo="repo3"}');
  });
  it('one repository: no backlog family at all', () => {
    expect(repositoryMetricsText('main', facts([]), NOW)).not.toContain('backlog');
    expect(repositoryMetricsText('main', facts(undefined), NOW)).not.toContain('backlog');
  });
});
