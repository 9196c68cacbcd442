/**
 * The repository marker: a small checksummed object at the root of every pgark repository,
 * written by `pgark repo create` (and `pgark setup`). Every other command refuses a location
 * without it before writing anything, so a mistyped path, an unmounted mount point or a wrong
 * bucket prefix is an error instead of a new, empty repository nobody restores from.
 *
 * Key `.pgark-repository` (a stanza name cannot start with '.', so it never collides with one);
 * content, stored like every object (uncompressed, framed with its sha256 trailer):
 *
 *   {"format": 1, "kind": "pgark-repository", "createdAt": "<ISO time>", "createdBy": "pgark <version>"}
 *
 * A repository written before the marker existed has no marker but has the stanza's
 * `stanza.json`: it is adopted (the marker is written) on first use.
 */
import { AlreadyExistsError, IntegrityError, NotARepositoryError, NotFoundError, causeText } from '../common/errors.js';
import { log } from '../common/log.js';
import { PGARK_VERSION } from '../version.js';
import type { Repository } from './repository.js';

export const REPO_MARKER_KEY = '.pgark-repository';
export const REPO_MARKER_FORMAT = 1;
const MARKER_KIND = 'pgark-repository';
/** A marker is a few hundred bytes; anything larger is not one. */
const MARKER_MAX = 64 * 1024;

export interface RepoMarker {
  format: number;
  kind: typeof MARKER_KIND;
  createdAt: string;
  createdBy: string;
}

/** The marker's content (pure). */
export function encodeRepoMarker(now: Date, createdBy = `pgark ${PGARK_VERSION}`): Buffer {
  const m: RepoMarker = { format: REPO_MARKER_FORMAT, kind: MARKER_KIND, createdAt: now.toISOString(), createdBy };
  return Buffer.from(JSON.stringify(m) + '\n');
}

/** Parse and check a marker's content (pure). IntegrityError for anything that is not one this pgark reads. */
export function parseRepoMarker(raw: Buffer, where: string): RepoMarker {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`unable to read '${where}': invalid repository marker (${causeText(err)})`);
  }
  const m = v as Partial<RepoMarker>;
  if (typeof m !== 'object' || m === null || m.kind !== MARKER_KIND || typeof m.format !== 'number' ||
    typeof m.createdAt !== 'string' || typeof m.createdBy !== 'string') {
    throw new IntegrityError(`unable to read '${where}': invalid repository marker (expected kind "${MARKER_KIND}", format, createdAt, createdBy)`);
  }
  if (m.format !== REPO_MARKER_FORMAT) {
    throw new IntegrityError(`unable to read '${where}': repository format ${m.format} is not supported by this pgark (supports ${REPO_MARKER_FORMAT})`);
  }
  return m as RepoMarker;
}

/** The marker, verified, or null when there is none. */
export async function readRepoMarker(repo: Repository): Promise<RepoMarker | null> {
  let raw: Buffer;
  try {
    const { readAll } = await import('./object-stream.js');
    const stream = await repo.getObject(REPO_MARKER_KEY);
    raw = await readAll(stream, MARKER_MAX);
    await stream.verified;
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
  return parseRepoMarker(raw, `${repo.driver.location}/${REPO_MARKER_KEY}`);
}

/** Shell-quote a location for a command line shown in a message (single quotes when needed). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The error for a location without a marker: names the (redacted) location and what to run. */
export function notARepositoryError(location: string, stanza: string): NotARepositoryError {
  return new NotARepositoryError(
    `no pgark repository at '${location}': it has no repository marker '${REPO_MARKER_KEY}' and no stanza '${stanza}' ` +
    '(a mistyped path, an unmounted file system or a wrong bucket or prefix?); nothing was written. ' +
    `If this is the right location, create the repository with: pgark repo create --repo ${shellWord(location)} ` +
    '(pgark setup does it too); otherwise correct --repo, PGARK_REPO or the config file\'s repo',
  );
}

/** 'legacy': a pre-marker repository whose marker could not be written (a read-only user). */
export type MarkerState = 'marked' | 'adopted' | 'legacy';

/** How often a long-running process re-checks the marker before writing (Repository.guardMarker). */
export const MARKER_RECHECK_MS = 60_000;

/**
 * Refuse a location that is not a pgark repository, before anything is written to it. A
 * repository from before the marker (no marker, but this stanza's stanza.json) gets its
 * marker now. Costs one small read: the stanza metadata, which nearly every command reads
 * next, is read at the same time (and kept by `repo`), so on a remote store the marker adds a
 * request but no round trip.
 */
export async function requireRepoMarker(repo: Repository): Promise<MarkerState> {
  const stanza = repo.readStanza().then((meta) => ({ meta }), (err: unknown) => ({ err }));
  const marker = await readRepoMarker(repo).finally(() => stanza);
  const st = await stanza;
  // With the marker, a stanza that cannot be read is the business of whoever reads it next.
  if (marker) return 'marked';
  if ('err' in st) throw st.err;
  if (!st.meta) throw notARepositoryError(repo.driver.location, repo.stanza);
  try {
    await writeMarker(repo);
    log.info(`repository '${repo.driver.location}' had stanzas but no marker (created by an older pgark): wrote its marker '${REPO_MARKER_KEY}'`);
  } catch (err) {
    // A read-only user (wal-fetch, restore) can still use it; the next writer marks it.
    log.warn(`unable to write the repository marker '${REPO_MARKER_KEY}' to '${repo.driver.location}' (continuing: the stanza shows it is a pgark repository): ${causeText(err)}`);
    return 'legacy';
  }
  return 'adopted';
}

async function writeMarker(repo: Repository): Promise<void> {
  try {
    await repo.putSmallObject(REPO_MARKER_KEY, encodeRepoMarker(new Date()), { ifAbsent: true });
  } catch (err) {
    // A concurrent creator won: its marker is as good as ours (read back by the caller if needed).
    if (!(err instanceof AlreadyExistsError)) throw err;
  }
}

export interface CreateRepoResult {
  location: string;
  created: boolean;
  marker: RepoMarker;
}

/**
 * `pgark repo create`: write the marker unless there is one (idempotent). On a filesystem the
 * put creates the directory and its missing parents, 0700. Concurrent creators agree through
 * put-if-absent.
 */
export async function createRepository(repo: Repository): Promise<CreateRepoResult> {
  const location = repo.driver.location;
  const existing = await readRepoMarker(repo);
  if (existing) return { location, created: false, marker: existing };
  let created = true;
  try {
    await repo.putSmallObject(REPO_MARKER_KEY, encodeRepoMarker(new Date()), { ifAbsent: true });
  } catch (err) {
    if (!(err instanceof AlreadyExistsError)) throw err;
    created = false;
  }
  const marker = await readRepoMarker(repo);
  if (!marker) throw new IntegrityError(`unable to read '${location}/${REPO_MARKER_KEY}' right after writing it`);
  return { location, created, marker };
}
