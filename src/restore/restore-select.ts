/**
 * Which backup a restore writes (pure): the one named, or with 'auto' the newest that ends before
 * the recovery target's time or LSN, read as PostgreSQL reads recovery_target_time.
 */
import { InvalidInputError, PgarkError } from '../common/errors.js';
import { parseLsn } from '../wal/segment-name.js';
import type { BackupInfo } from '../catalog/backup-info.js';
import { findBackup } from '../catalog/catalog.js';
import type { RecoveryTarget } from './recovery-target.js';

/** Choose the backup: the one named, or the newest that can reach the target. */
export function chooseBackup(backups: readonly BackupInfo[], ref: string, target: RecoveryTarget): { backup: BackupInfo; note?: string } {
  const limit = targetLimit(target);
  if (ref !== 'auto') {
    const b = findBackup(backups, ref);
    if (limit && !limit.reaches(b)) throw new InvalidInputError(`backup ${b.id} ends at ${b.stop.time} (LSN ${b.stop.lsn}), after the recovery target ${limit.text}: it cannot reach it; pick an older backup or 'auto'`);
    return { backup: b };
  }
  if (backups.length === 0) throw new PgarkError('the repository holds no backup of this stanza');
  if (!limit) return { backup: backups[backups.length - 1]!, note: 'no time or LSN target: restoring the newest backup' };
  const ok = backups.filter((b) => limit.reaches(b));
  if (ok.length === 0) throw new InvalidInputError(`no backup ends before the recovery target ${limit.text}: the oldest, ${backups[0]!.id}, ends at ${backups[0]!.stop.time} (LSN ${backups[0]!.stop.lsn})`);
  return { backup: ok[ok.length - 1]! };
}

function targetLimit(t: RecoveryTarget): { text: string; reaches: (b: BackupInfo) => boolean } | undefined {
  if (t.time !== undefined) {
    const ms = parseTargetTime(t.time);
    if (ms === undefined) throw new InvalidInputError(`unable to interpret --target-time '${t.time}' to choose a backup: name the backup to restore instead of 'auto'`);
    return { text: t.time, reaches: (b) => Date.parse(b.stop.time) <= ms };
  }
  if (t.lsn !== undefined) {
    const lsn = parseLsn(t.lsn);
    return { text: t.lsn, reaches: (b) => parseLsn(b.stop.lsn) <= lsn };
  }
  return undefined;
}

/** Offset (ms) of `zone` from UTC at instant `utcMs`, by Intl. */
function zoneOffsetMs(zone: string, utcMs: number): number | undefined {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(utcMs));
  } catch {
    return undefined;
  }
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour') % 24, get('minute'), get('second'));
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/** The largest UTC offset in use (+14:00): without a zone, assume the earliest instant the text can mean. */
const MAX_OFFSET_MS = 14 * 3600_000;

/**
 * The instant a recovery_target_time text means, as PostgreSQL reads timestamptz input:
 * 'YYYY-MM-DD[ T]HH:MM[:SS[.frac]]' followed by an optional zone: Z, UTC/GMT, +H, +HH, +HH:MM,
 * +HHMM (with or without a space before it), or a full zone name (Europe/Berlin). Without a
 * zone PostgreSQL uses the server's TimeZone, which pgark does not know: the earliest possible
 * instant is returned, so the backup chosen always ends before the target. undefined when the
 * text is not in one of these forms.
 */
export function parseTargetTime(text: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(.*)$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = ''] = m;
  const zone = m[8] ?? '';
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > 31 || Number(h) > 24 || Number(mi) > 59 || Number(sec) > 60) return undefined;
  const local = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) + Math.floor(Number(`0${frac}`) * 1000);
  if (Number.isNaN(local) || new Date(local).getUTCDate() !== Number(d) && Number(h) < 24) return undefined;
  if (zone === '') return local - MAX_OFFSET_MS;
  if (/^(Z|UTC|GMT)$/i.test(zone)) return local;
  const off = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone);
  if (off) {
    const ms = (Number(off[2]) * 60 + Number(off[3] ?? 0)) * 60_000;
    return off[1] === '+' ? local - ms : local + ms;
  }
  if (/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) {
    const first = zoneOffsetMs(zone, local);
    if (first === undefined) return undefined;
    const second = zoneOffsetMs(zone, local - first) ?? first;
    return local - second;
  }
  return undefined;
}
