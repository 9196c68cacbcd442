import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import { backupInfo } from '../helpers/backup-info-fixture.js';
import { InvalidInputError, NotFoundError, PgarkError } from '../../src/common/errors.js';
import { validateTarget, type RecoveryTarget } from '../../src/restore/recovery-conf.js';
import { chooseBackup, parseTargetTime } from '../../src/restore/restore.js';

const info = backupInfo;

// Stop LSNs chosen so that comparing them as strings would give the wrong order:
// '0/10000100' < '0/9000100' as text, but 0x10000100 > 0x9000100.
const F1 = info('20261120-010000F', '2026-11-20T01:10:00.000Z', '0/9000100');
const I1 = info('20261121-010000I', '2026-11-21T01:10:00.000Z', '0/10000100', F1);
const I2 = info('20261122-010000I', '2026-11-22T01:10:00.000Z', '1/2000100', I1);
const BACKUPS = [F1, I1, I2];
const NEWEST_NOTE = 'no time or LSN target: restoring the newest backup';

function thrown<E extends Error>(cls: new (...a: never[]) => E, f: () => unknown): E {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as E;
  }
  throw new Error('expected an error');
}

describe('chooseBackup by reference', () => {
  it("'latest' is the newest backup, without a note", () => {
    const r = chooseBackup(BACKUPS, 'latest', {});
    expect(r.backup).toBe(I2);
    expect('note' in r).toBe(false);
  });

  it.each([F1, I1, I2])('explicit id %#', (b) => {
    const r = chooseBackup(BACKUPS, b.id, {});
    expect(r.backup).toBe(b);
    expect('note' in r).toBe(false);
  });

  it('unknown id: NotFoundError', () => {
    const e = thrown(NotFoundError, () => chooseBackup(BACKUPS, '20261101-000000F', {}));
    expect(e.message).toBe("backup '20261101-000000F' not found (pgark list shows the backups)");
    expect(e.exitCode).toBe(8);
  });

  it('explicit id or latest with no backups: NotFoundError', () => {
    expect(thrown(NotFoundError, () => chooseBackup([], 'latest', {})).message).toBe('the repository holds no backup of this stanza');
    expect(thrown(NotFoundError, () => chooseBackup([], F1.id, {})).message).toBe('the repository holds no backup of this stanza');
  });

  it('explicit id that reaches the target is taken', () => {
    expect(chooseBackup(BACKUPS, I1.id, { time: '2026-11-21 01:10:00+00' }).backup).toBe(I1);
    expect(chooseBackup(BACKUPS, F1.id, { time: '2026-11-23 00:00:00+00' }).backup).toBe(F1);
    expect(chooseBackup(BACKUPS, I1.id, { lsn: '0/10000100' }).backup).toBe(I1);
  });

  it('explicit id whose stop is after the target time: InvalidInputError', () => {
    const e = thrown(InvalidInputError, () => chooseBackup(BACKUPS, I2.id, { time: '2026-11-21 12:00:00+00' }));
    expect(e.message).toBe(
      "backup 20261122-010000I ends at 2026-11-22T01:10:00.000Z (LSN 1/2000100), after the recovery target 2026-11-21 12:00:00+00: it cannot reach it; pick an older backup or 'auto'",
    );
    expect(thrown(InvalidInputError, () => chooseBackup(BACKUPS, 'latest', { time: '2026-11-21T12:00:00Z' })).message).toBe(
      "backup 20261122-010000I ends at 2026-11-22T01:10:00.000Z (LSN 1/2000100), after the recovery target 2026-11-21T12:00:00Z: it cannot reach it; pick an older backup or 'auto'",
    );
  });

  it('explicit id whose stop LSN is after the target LSN (numerically): InvalidInputError', () => {
    const e = thrown(InvalidInputError, () => chooseBackup(BACKUPS, I1.id, { lsn: '0/9FFFFFF' }));
    expect(e.message).toBe(
      "backup 20261121-010000I ends at 2026-11-21T01:10:00.000Z (LSN 0/10000100), after the recovery target 0/9FFFFFF: it cannot reach it; pick an older backup or 'auto'",
    );
  });
});

describe("chooseBackup 'auto'", () => {
  it.each<[string, RecoveryTarget]>([
    ['no target', {}],
    ['xid target', { xid: '12345' }],
    ['name target', { name: 'before_migration' }],
    ['immediate', { immediate: true }],
  ])('%s: the newest backup, with a note', (_, target) => {
    expect(chooseBackup(BACKUPS, 'auto', target)).toEqual({ backup: I2, note: NEWEST_NOTE });
  });

  it('no backups: PgarkError', () => {
    const e = thrown(PgarkError, () => chooseBackup([], 'auto', {}));
    expect(e.message).toBe('the repository holds no backup of this stanza');
    expect(e).not.toBeInstanceOf(NotFoundError);
  });

  it.each<[string, BackupInfo]>([
    ['2026-11-23 00:00:00+00', I2],
    ['2026-11-22 01:10:00+00', I2],
    ['2026-11-22 01:09:59.999+00', I1],
    ['2026-11-22T02:10:00+01:00', I2],
    ['2026-11-22 02:09:59+01', I1],
    ['2026-11-21 02:10:00+01', I1],
    ['2026-11-21 02:09:00+01', F1],
    ['2026-11-20 01:10:00 UTC', F1],
    ['2026-11-20T01:10:00.000Z', F1],
    ['2026-11-19 20:10:00-05', F1],
  ])('target time %s: the newest backup that stops at or before it', (time, expected) => {
    const r = chooseBackup(BACKUPS, 'auto', { time });
    expect(r.backup).toBe(expected);
    expect('note' in r).toBe(false);
  });

  it('target time before every backup ends: InvalidInputError', () => {
    const e = thrown(InvalidInputError, () => chooseBackup(BACKUPS, 'auto', { time: '2026-11-20T01:09:59Z' }));
    expect(e.message).toBe('no backup ends before the recovery target 2026-11-20T01:09:59Z: the oldest, 20261120-010000F, ends at 2026-11-20T01:10:00.000Z (LSN 0/9000100)');
  });

  it.each<[string, BackupInfo]>([
    ['0/9000100', F1],
    ['0/9FFFFFF', F1],
    ['0/10000100', I1],
    ['0/FFFFFFFF', I1],
    ['1/20000FF', I1],
    ['1/2000100', I2],
    ['FFFFFFFF/FFFFFFFF', I2],
  ])('target LSN %s: the newest backup that stops at or before it (numeric comparison)', (lsn, expected) => {
    expect(chooseBackup(BACKUPS, 'auto', { lsn }).backup).toBe(expected);
  });

  it('target LSN before every backup ends: InvalidInputError', () => {
    const e = thrown(InvalidInputError, () => chooseBackup(BACKUPS, 'auto', { lsn: '0/90000FF' }));
    expect(e.message).toBe('no backup ends before the recovery target 0/90000FF: the oldest, 20261120-010000F, ends at 2026-11-20T01:10:00.000Z (LSN 0/9000100)');
  });

  // validateTarget (run before chooseBackup by runRestore) accepts these target times; chooseBackup
  // must honour them rather than fall back to the newest backup as if no target had been given.
  it.each<[string, BackupInfo]>([
    ['2026-11-21 12:00:00 +00:00', I1],
    ['2026-11-21 12:00:00+1', I1],
    ['2026-11-21 12:00:00 Europe/Berlin', I1],
  ])('target time %s, accepted by validateTarget, selects the right backup', (time, expected) => {
    expect(validateTarget({ time })).toEqual({ time });
    expect(chooseBackup(BACKUPS, 'auto', { time })).toEqual({ backup: expected });
  });
});

describe('parseTargetTime', () => {
  const utc = (s: string) => Date.parse(s);
  it.each<[string, number]>([
    ['2026-11-23 16:20:00+00', utc('2026-11-23T16:20:00.000Z')],
    ['2026-11-23 16:20:00.123456+05:30', utc('2026-11-23T10:50:00.123Z')],
    ['2026-11-23T16:20:00Z', utc('2026-11-23T16:20:00.000Z')],
    ['2026-11-23 16:20:00 UTC', utc('2026-11-23T16:20:00.000Z')],
    ['2026-11-23 16:20:00 gmt', utc('2026-11-23T16:20:00.000Z')],
    ['2026-11-23 16:20:00-08', utc('2026-11-24T00:20:00.000Z')],
    ['2026-11-23 16:20:00+0530', utc('2026-11-23T10:50:00.000Z')],
    ['2026-11-23T16:20:00.5-03:00', utc('2026-11-23T19:20:00.500Z')],
    ['  2026-11-23 16:20:00+00  ', utc('2026-11-23T16:20:00.000Z')],
  ])('%j', (text, ms) => {
    expect(parseTargetTime(text)).toBe(ms);
  });

  it('sanity: the expected values are the right instants', () => {
    expect(utc('2026-11-23T16:20:00.000Z')).toBe(1795450800000);
  });

  it.each(['garbage', '', '   ', 'now', '2026-13-45 99:99:99+00'])('%j -> undefined', (text) => {
    expect(parseTargetTime(text)).toBeUndefined();
  });

  // Forms validateTarget accepts (PostgreSQL reads them too): a space before the offset, a
  // one-digit hour offset, a full zone name.
  it.each<[string, number]>([
    ['2026-11-23 16:20:00 +05:30', utc('2026-11-23T10:50:00.000Z')],
    ['2026-11-23 16:20:00+5', utc('2026-11-23T11:20:00.000Z')],
    ['2026-11-23 16:20:00 Europe/Berlin', utc('2026-11-23T15:20:00.000Z')],
  ])('%j (accepted by validateTarget)', (text, ms) => {
    expect(validateTarget({ time: text })).toEqual({ time: text });
    expect(parseTargetTime(text)).toBe(ms);
  });
});
