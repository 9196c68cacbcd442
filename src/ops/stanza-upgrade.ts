/**
 * `pgark stanza-upgrade`: after pg_upgrade the cluster has a new system identifier (and maybe
 * a new major version), so wal-push and backup refuse it (exit 4). This rebinds the stanza to
 * the new cluster and keeps the old one in the stanza's history, so that its backups stay
 * restorable and its WAL stays fetchable and verifiable under its own system identifier.
 *
 * pg_upgrade starts the new cluster's WAL after the old one's (pg_resetwal -l with the old
 * cluster's next WAL file, after removing every WAL file of the new one), so both clusters' WAL
 * live under the same keys without colliding. The boundary is the start of the oldest segment in
 * the new cluster's pg_wal (or of its checkpoint's REDO segment, if older): until now wal-push
 * refused all of the new cluster's WAL (exit 4), so none of it is archived and all of it is still
 * in pg_wal. It is recorded as `sinceLsn` and decides which cluster a segment name belongs to
 * (stanza-meta.ts clusterForWal). The upgrade refuses when the archive already holds WAL at or
 * after that boundary: names would collide.
 */
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ClusterMismatchError, ConfigError, InvalidInputError } from '../common/errors.js';
import { parseControlData, type ControlData } from '../pg/controldata.js';
import { readPgVersion } from '../pg/control-file.js';
import { requirePgProgram } from '../pg/pg-bin.js';
import { stanzaMetaKey, walNameOfKey, walPrefix } from '../repo/layout.js';
import { acquireRepoLock } from '../repo/repo-lock.js';
import type { Repository } from '../repo/repository.js';
import { lsnValue, type StanzaMeta } from '../repo/stanza-meta.js';
import { PGARK_VERSION } from '../version.js';
import { isSegmentName, isSegmentOrPartialName } from '../pg/wal-names.js';

export interface StanzaUpgradeOutcome {
  stanza: string;
  /** False when the stanza was already bound to this cluster (nothing changed). */
  upgraded: boolean;
  previous?: { systemIdentifier: string; pgVersion: number };
  current: { systemIdentifier: string; pgVersion: number; walSegmentSize: number; sinceLsn?: string };
  /** Newest archived WAL segment of the clusters before (none when the archive is empty). */
  lastArchivedBefore?: string;
}

/** The byte position just past the newest archived segment or partial, and its name. */
export function archiveEnd(names: readonly string[], walSegmentSize: number): { end: bigint; name: string } | undefined {
  let best: { end: bigint; name: string } | undefined;
  const perLog = 0x100000000n / BigInt(walSegmentSize);
  for (const n of names) {
    if (!isSegmentOrPartialName(n)) continue;
    const segno = BigInt(`0x${n.slice(8, 16)}`) * perLog + BigInt(`0x${n.slice(16, 24)}`);
    const end = (segno + 1n) * BigInt(walSegmentSize);
    if (!best || end > best.end) best = { end, name: n };
  }
  return best;
}

/**
 * The stanza metadata after upgrading `meta` to the cluster of `cd` (pure). Throws when the
 * upgrade would be unsafe.
 */
export function upgradedMeta(meta: StanzaMeta, cd: ControlData, pgVersion: number, archived: readonly string[], now: Date, oldestLocalWal?: string): StanzaMeta {
  if (meta.history?.some((h) => h.systemIdentifier === cd.systemIdentifier)) {
    throw new ClusterMismatchError(`the cluster in the data directory (system identifier ${cd.systemIdentifier}) is one stanza '${meta.stanza}' held before an earlier stanza-upgrade: a stanza cannot go back to it`);
  }
  const start = newWalStart(cd, oldestLocalWal);
  const startText = formatLsnText(start);
  const end = archiveEnd(archived, meta.walSegmentSize);
  if (end && end.end > start) {
    throw new InvalidInputError(
      `the new cluster's WAL starts at ${startText}, but stanza '${meta.stanza}' already holds WAL up to ${end.name}, at or after that point: ` +
      'both clusters would archive under the same segment names. pg_upgrade normally starts the new WAL after the old cluster\'s; ' +
      'archive the new cluster into a new stanza instead',
    );
  }
  const { history, sinceLsn, ...rest } = meta;
  return {
    ...rest,
    systemIdentifier: cd.systemIdentifier,
    pgVersion,
    walSegmentSize: cd.walSegmentSize,
    sinceLsn: startText,
    history: [
      ...(history ?? []),
      { systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion, walSegmentSize: meta.walSegmentSize, ...(sinceLsn ? { sinceLsn } : {}), until: now.toISOString() },
    ],
    createdBy: `${meta.createdBy}; stanza-upgrade by pgark ${PGARK_VERSION}`,
  };
}

/** Start of the new cluster's WAL: the oldest segment in its pg_wal, or its REDO segment if older. */
export function newWalStart(cd: ControlData, oldestLocalWal: string | undefined): bigint {
  const size = BigInt(cd.walSegmentSize);
  let start = (lsnValue(cd.redoLsn) / size) * size;
  if (oldestLocalWal !== undefined) {
    const segno = BigInt(`0x${oldestLocalWal.slice(8, 16)}`) * (0x100000000n / size) + BigInt(`0x${oldestLocalWal.slice(16, 24)}`);
    if (segno * size < start) start = segno * size;
  }
  return start;
}

export function formatLsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The lowest-positioned WAL segment file in `walDir` (any timeline), or undefined. */
export async function oldestWalSegment(walDir: string): Promise<string | undefined> {
  const names = (await readdir(walDir)).filter((n) => isSegmentName(n));
  names.sort((a, b) => (a.slice(8) < b.slice(8) ? -1 : a.slice(8) > b.slice(8) ? 1 : 0));
  return names[0];
}

export async function readControlData(pgdata: string, pgVersion: number): Promise<ControlData> {
  const bin = requirePgProgram('pg_controldata', pgVersion);
  const { stdout } = await promisify(execFile)(bin, [pgdata], { env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, timeout: 30_000 }).catch((err: unknown) => {
    throw new ConfigError(`unable to read the control data of '${pgdata}' with ${bin}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
  });
  return parseControlData(stdout);
}

export async function stanzaUpgrade(repo: Repository, pgdata: string): Promise<StanzaUpgradeOutcome> {
  const pgVersion = await readPgVersion(pgdata).catch((err: unknown) => {
    throw new ConfigError(`'${pgdata}' is not a PostgreSQL data directory (${(err as Error).message}): pass --pgdata of the upgraded cluster`);
  });
  const cd = await readControlData(pgdata, pgVersion);
  const lock = await acquireRepoLock(repo, 'backup', { purpose: 'stanza-upgrade' });
  try {
    const meta = await repo.requireStanza();
    if (meta.systemIdentifier === cd.systemIdentifier) {
      return { stanza: meta.stanza, upgraded: false, current: { systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion, walSegmentSize: meta.walSegmentSize, ...(meta.sinceLsn ? { sinceLsn: meta.sinceLsn } : {}) } };
    }
    const archived: string[] = [];
    for await (const o of repo.list(walPrefix(repo.stanza))) {
      const n = walNameOfKey(o.path);
      if (n) archived.push(n);
    }
    const next = upgradedMeta(meta, cd, pgVersion, archived, new Date(), await oldestWalSegment(join(pgdata, 'pg_wal')));
    await repo.putJson(stanzaMetaKey(repo.stanza), next, false);
    repo.forgetStanza();
    const end = archiveEnd(archived, meta.walSegmentSize);
    return {
      stanza: meta.stanza, upgraded: true,
      previous: { systemIdentifier: meta.systemIdentifier, pgVersion: meta.pgVersion },
      current: { systemIdentifier: next.systemIdentifier, pgVersion: next.pgVersion, walSegmentSize: next.walSegmentSize, sinceLsn: next.sinceLsn! },
      ...(end ? { lastArchivedBefore: end.name } : {}),
    };
  } finally {
    await lock.release();
  }
}
