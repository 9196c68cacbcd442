import { describe, expect, it } from 'vitest';
import { parseBackupLabel, sizeToBytes } from '../../src/backup/pg-api.js';
import { PgarkError } from '../../src/common/errors.js';

function thrown(f: () => unknown): PgarkError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PgarkError);
    return e as PgarkError;
  }
  throw new Error('expected a PgarkError');
}

describe('sizeToBytes', () => {
  it.each<[string, number]>([
    ['8kB', 8192],
    ['32kB', 32768],
    ['16MB', 16 * 1024 * 1024],
    ['64MB', 67108864],
    ['1GB', 1073741824],
    ['2TB', 2 * 1024 ** 4],
    ['1024', 1024],
    ['0', 0],
    ['8192B', 8192],
    [' 1GB\n', 1073741824],
    ['16 MB', 16777216],
  ])('%j -> %i', (text, bytes) => {
    expect(sizeToBytes(text)).toBe(bytes);
  });

  it.each(['8KB', '16mb', '1.5GB', '', 'MB', '-1', '1PB', 'GB1', '1 GB 2'])('%j throws', (text) => {
    expect(thrown(() => sizeToBytes(text)).message).toBe(`unexpected size setting '${text}'`);
  });
});

describe('parseBackupLabel', () => {
  // As pg_backup_stop() returns it on PostgreSQL 15.
  const pg15 = [
    'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)',
    'CHECKPOINT LOCATION: 0/6000060',
    'BACKUP METHOD: streamed',
    'BACKUP FROM: primary',
    'START TIME: 2026-11-23 16:20:00 UTC',
    'LABEL: pgark backup 20261123-162000F',
    'START TIMELINE: 1',
    '',
  ].join('\n');

  it('PostgreSQL 15 label from a primary', () => {
    expect(parseBackupLabel(pg15)).toEqual({ startLsn: '0/6000028', startWalFile: '000000010000000000000006', startTimeline: 1 });
  });

  it('label from a standby on a later timeline, high LSN, no final newline', () => {
    const text = [
      'START WAL LOCATION: 1A/B2000060 (file 000000030000001A000000B2)',
      'CHECKPOINT LOCATION: 1A/B2000098',
      'BACKUP METHOD: streamed',
      'BACKUP FROM: standby',
      'START TIME: 2026-11-23 16:20:00 CET',
      'LABEL: nightly',
      'START TIMELINE: 12',
    ].join('\n');
    expect(parseBackupLabel(text)).toEqual({ startLsn: '1A/B2000060', startWalFile: '000000030000001A000000B2', startTimeline: 12 });
  });

  it('a label text that looks like a field is not taken for it', () => {
    const text = pg15.replace('LABEL: pgark backup 20261123-162000F', 'LABEL: START TIMELINE: 9');
    expect(parseBackupLabel(text).startTimeline).toBe(1);
  });

  const MESSAGE = 'unexpected backup_label from PostgreSQL: no START WAL LOCATION / START TIMELINE';
  it.each<[string, string]>([
    ['empty', ''],
    ['no START TIMELINE', pg15.replace('START TIMELINE: 1\n', '')],
    ['no START WAL LOCATION', pg15.replace(/^START WAL LOCATION.*\n/, '')],
    ['WAL location without its file', pg15.replace(' (file 000000010000000000000006)', '')],
    ['WAL file name too short', pg15.replace('000000010000000000000006', '00000001000000000000006')],
    ['WAL location not hex', pg15.replace('0/6000028', '0/600002G')],
    ['timeline not a number', pg15.replace('START TIMELINE: 1', 'START TIMELINE: one')],
    ['fields indented', pg15.replace('START WAL LOCATION', ' START WAL LOCATION')],
  ])('malformed: %s', (_, text) => {
    expect(thrown(() => parseBackupLabel(text)).message).toBe(MESSAGE);
  });
});
