import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { backupInfo } from '../helpers/backup-info-fixture.js';
import { ExitCode, IntegrityError, InvalidInputError, KeyError, NotARepositoryError, NotFoundError, PgarkError, StorageError } from '../../src/common/errors.js';
import { chooseAcrossRepos, holdsChain, type RepoListing } from '../../src/restore/repo-choice.js';
import { readFailure, RestoreSources } from '../../src/restore/restore-sources.js';
import type { RepositorySettings } from '../../src/config/resolve.js';
import type { Repository } from '../../src/repo/repository.js';

function info(id: string, stopTime: string, stopLsn: string, parent?: BackupInfo, manifestSha = 'a'): BackupInfo {
  return backupInfo(id, stopTime, stopLsn, parent, manifestSha);
}

const F1 = info('20261120-010000F', '2026-11-20T01:10:00.000Z', '0/9000100');
const I1 = info('20261121-010000I', '2026-11-21T01:10:00.000Z', '0/10000100', F1);
const F2 = info('20261122-010000F', '2026-11-22T01:10:00.000Z', '1/2000100');
// The same id as F2 but another manifest: not the same backup as stored.
const F2other = info('20261122-010000F', '2026-11-22T01:10:00.000Z', '1/2000100', undefined, 'b');
const down = new StorageError('s3', 'unable to list: connect ECONNREFUSED 127.0.0.1:1');

const ok = (name: string, ...backups: BackupInfo[]): RepoListing => ({ name, backups });
const bad = (name: string, error: unknown = down): RepoListing => ({ name, error });

describe('chooseAcrossRepos', () => {
  const cases: Array<{ what: string; listings: RepoListing[]; ref: string; target?: { lsn?: string; time?: string }; repo: string; backup: string; fallbacks: string[]; unreachable?: string[] }> = [
    { what: 'one repository', listings: [ok('repo', F1, I1)], ref: 'auto', repo: 'repo', backup: I1.id, fallbacks: [] },
    { what: 'the newest across repositories', listings: [ok('repo', F1, I1), ok('repo2', F1, I1, F2)], ref: 'auto', repo: 'repo2', backup: F2.id, fallbacks: [] },
    { what: 'latest across repositories', listings: [ok('repo', F1, I1), ok('repo2', F1, I1, F2)], ref: 'latest', repo: 'repo2', backup: F2.id, fallbacks: [] },
    { what: 'a tie goes to priority order', listings: [ok('repo', F1, I1), ok('repo2', F1, I1)], ref: 'auto', repo: 'repo', backup: I1.id, fallbacks: ['repo2'] },
    { what: 'the target limits each repository', listings: [ok('repo', F1, I1), ok('repo2', F1, I1, F2)], ref: 'auto', target: { lsn: '0/20000000' }, repo: 'repo', backup: I1.id, fallbacks: ['repo2'] },
    { what: 'a named backup: the first that holds it', listings: [ok('repo', F1), ok('repo2', F1, I1), ok('repo3', F1, I1)], ref: I1.id, repo: 'repo2', backup: I1.id, fallbacks: ['repo3'] },
    { what: 'a named backup in the first', listings: [ok('repo', F1, I1), ok('repo2', F1, I1)], ref: F1.id, repo: 'repo', backup: F1.id, fallbacks: ['repo2'] },
    { what: 'an unreachable first repository is skipped', listings: [bad('repo'), ok('repo2', F1, I1)], ref: 'auto', repo: 'repo2', backup: I1.id, fallbacks: [], unreachable: ['repo'] },
    { what: 'an unreachable repository is not a fallback', listings: [ok('repo', F1), bad('repo2'), ok('repo3', F1)], ref: F1.id, repo: 'repo', backup: F1.id, fallbacks: ['repo3'], unreachable: ['repo2'] },
    { what: 'a repository without the whole chain is not a fallback', listings: [ok('repo', F1, I1), ok('repo2', I1)], ref: I1.id, repo: 'repo', backup: I1.id, fallbacks: [] },
    { what: 'another manifest under the same id is not a fallback', listings: [ok('repo', F2), ok('repo2', F2other)], ref: F2.id, repo: 'repo', backup: F2.id, fallbacks: [] },
    { what: 'an empty first repository', listings: [ok('repo'), ok('repo2', F1)], ref: 'auto', repo: 'repo2', backup: F1.id, fallbacks: [] },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const r = chooseAcrossRepos(c.listings, c.ref, c.target ?? {});
      expect({ repo: r.repo, backup: r.backup.id, fallbacks: r.fallbacks, unreachable: r.unreachable.map((u) => u.name) }).toEqual({ repo: c.repo, backup: c.backup, fallbacks: c.fallbacks, unreachable: c.unreachable ?? [] });
      expect(r.chain.map((b) => b.id)).toEqual(r.backup.chain);
    });
  }

  it('one repository: its own error, unchanged', () => {
    const e = new NotARepositoryError('no marker');
    expect(() => chooseAcrossRepos([bad('repo', e)], 'auto', {})).toThrow(e);
    expect(() => chooseAcrossRepos([ok('repo')], 'auto', {})).toThrow('the repository holds no backup of this stanza');
    expect(() => chooseAcrossRepos([ok('repo', F1)], 'nope', {})).toThrow(NotFoundError);
  });

  it('every repository unreachable: the error names each, with the exit code of a storage failure', () => {
    let err: unknown;
    try {
      chooseAcrossRepos([bad('repo', new StorageError('fs', 'repo is gone')), bad('repo2', new StorageError('s3', 'connection refused'))], 'auto', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as PgarkError).exitCode).toBe(ExitCode.STORAGE);
    expect((err as Error).message).toBe('no repository could be read: repo (unreachable): repo is gone; repo2 (unreachable): connection refused');
  });

  it('unreachable and empty: never "no backup" alone, the unreachable one decides the exit code', () => {
    let err: unknown;
    try {
      chooseAcrossRepos([ok('repo'), bad('repo2', new StorageError('s3', 'connection refused'))], 'auto', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe('no repository has a backup to restore: repo: the repository holds no backup of this stanza; repo2 (unreachable): connection refused');
  });

  it('none reaches the target: the refusal of each', () => {
    expect(() => chooseAcrossRepos([ok('repo', F2), ok('repo2', F2)], 'auto', { lsn: '0/1000000' })).toThrow(InvalidInputError);
    expect(() => chooseAcrossRepos([ok('repo', F1), ok('repo2', F1)], 'nope', {})).toThrow(/^no repository has a backup to restore: repo: backup 'nope' not found .*; repo2: backup 'nope' not found/);
  });

  it('holdsChain compares ids and manifests', () => {
    expect(holdsChain([F1, I1], [F1, I1])).toBe(true);
    expect(holdsChain([I1], [F1, I1])).toBe(false);
    expect(holdsChain([F2other], [F2])).toBe(false);
  });
});

describe('readFailure', () => {
  const net = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const disk = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
  const table: Array<[string, unknown, ReturnType<typeof readFailure>]> = [
    ['a storage error', down, 'unreachable'],
    ['no marker', new NotARepositoryError('x'), 'unreachable'],
    ['an object gone', new NotFoundError('k'), 'unreachable'],
    ['a network error', net, 'unreachable'],
    ['a checksum failure', new IntegrityError('sha256 mismatch'), 'damaged'],
    ['a refused key', new KeyError('key k1 needed'), 'damaged'],
    ['the target disk full', disk, undefined],
    ['a bug', new TypeError('x is undefined'), undefined],
    ['a usage error', new PgarkError('x'), undefined],
  ];
  for (const [what, err, want] of table) it(what, () => expect(readFailure(err)).toBe(want));
});

describe('RestoreSources', () => {
  const settings = (repo: string) => ({ repo, stanza: 'main', driver: {}, retries: 0, retryBudgetSec: 0, cipherKeyFile: undefined, cipherKeyEnv: undefined }) satisfies RepositorySettings;
  const opener = () => {
    const opened: string[] = [];
    const closed: string[] = [];
    const open = async (s: RepositorySettings) => {
      opened.push(s.repo!);
      return { location: s.repo, close: async () => void closed.push(s.repo!) } as unknown as Repository;
    };
    return { opened, closed, open };
  };

  it('moves to the next repository on a read another copy can cure, and stays there', async () => {
    const o = opener();
    const s = new RestoreSources([{ name: 'repo', settings: settings('/a') }, { name: 'repo2', settings: settings('/b') }], o.open);
    expect((await s.repository()).location).toBe('/a');
    expect(await s.next(down, 'object 1')).toBe(true);
    expect(s.current).toBe('repo2');
    expect((await s.repository()).location).toBe('/b');
    // The copy left stays open (another lane of the thread may still read it) until close().
    expect(o.closed).toEqual([]);
    // No copy left: the error stands.
    expect(await s.next(down, 'object 1')).toBe(false);
    expect(s.current).toBe('repo2');
    await s.close();
    expect(o.closed.sort()).toEqual(['/a', '/b']);
  });

  it('a failure on a copy another lane has already left runs the task again from the current one, without moving on', async () => {
    const o = opener();
    const s = new RestoreSources([{ name: 'repo', settings: settings('/a') }, { name: 'repo2', settings: settings('/b') }, { name: 'repo3', settings: settings('/c') }], o.open);
    // Two lanes read from position 0; both fail there.
    expect(s.position).toBe(0);
    expect(await s.next(down, 'object 1', 0)).toBe(true);
    expect(await s.next(down, 'object 2', 0)).toBe(true);
    expect(s.current).toBe('repo2');
    // A failure on repo2 itself moves on to repo3.
    expect(await s.next(down, 'object 2', 1)).toBe(true);
    expect(s.current).toBe('repo3');
    expect(await s.next(new TypeError('bug'), 'object 3', 0)).toBe(false);
  });

  it('a damaged copy moves on (the next copy is checked against the same manifest); a local failure does not', async () => {
    const o = opener();
    const s = new RestoreSources([{ name: 'repo', settings: settings('/a') }, { name: 'repo2', settings: settings('/b') }], o.open);
    expect(await s.next(new TypeError('bug'), 'object 1')).toBe(false);
    expect(s.current).toBe('repo');
    expect(await s.next(new IntegrityError('sha256 mismatch'), 'object 1')).toBe(true);
    expect(s.current).toBe('repo2');
  });

  it('one repository: nothing to move to', async () => {
    const s = new RestoreSources([{ name: 'repo', settings: settings('/a') }], opener().open);
    expect(await s.next(down, 'object 1')).toBe(false);
  });
});
