/**
 * Replication set metadata (pure). A set is a PostgreSQL publication on the source named
 * `pgark_<set>`; pgark keeps the set's definition and its subscribers as JSON in the
 * publication's comment (COMMENT ON PUBLICATION), so the metadata lives, is backed up and is
 * dropped with the publication itself, in the source database, and nothing extra is replicated.
 */
import { InvalidInputError } from '../common/errors.js';

export const SET_META_FORMAT = 1;
export type Operation = 'insert' | 'update' | 'delete' | 'truncate';
export const OPERATIONS: readonly Operation[] = ['insert', 'update', 'delete', 'truncate'];

export interface SetTable {
  schema: string;
  table: string;
  /** PostgreSQL 15+ publication row filter (a boolean SQL expression), as given. */
  rowFilter?: string;
  /** PostgreSQL 15+ publication column list. */
  columns?: string[];
}

export type SetScope = { kind: 'tables' } | { kind: 'schema'; schemas: string[] } | { kind: 'all-tables' };

export interface Subscriber {
  name: string;
  mode: 'native' | 'agent';
  /** The logical replication slot on the source (pgoutput). */
  slot: string;
  /** Target connection string (never holds a password). */
  target: string;
  createdAt: string;
  /** Subscribed with --sync-structure: `sets add-table` creates a new table's definition on the target too. */
  syncStructure?: boolean;
  /** Agent subscribers: tables ('schema.table') added to the set that the apply worker has not copied yet. */
  pendingTables?: string[];
}

export interface SetMeta {
  format: number;
  set: string;
  scope: SetScope;
  operations: Operation[];
  /** Tables listed explicitly (scope 'tables'), with their filters. */
  tables: SetTable[];
  subscribers: Subscriber[];
  createdAt: string;
  updatedAt: string;
}

const NAME_RE = /^[a-z][a-z0-9_]{0,39}$/;

/** Set and subscriber names: lower-case letters, digits and '_', starting with a letter, at most 40. */
export function checkName(kind: 'set' | 'subscriber', name: string): string {
  if (!NAME_RE.test(name)) {
    throw new InvalidInputError(`invalid ${kind} name '${name.slice(0, 64)}': lower-case letters, digits and '_', starting with a letter, at most 40 characters`);
  }
  return name;
}

export function publicationName(set: string): string {
  return `pgark_${checkName('set', set)}`;
}

/** The set a publication name belongs to, or undefined for publications pgark did not create. */
export function setOfPublication(pubname: string): string | undefined {
  const m = /^pgark_([a-z][a-z0-9_]{0,39})$/.exec(pubname);
  return m?.[1];
}

/** Slot names: pgark_<set>_<subscriber> (at most 63 characters, as PostgreSQL allows). */
export function slotName(set: string, subscriber: string): string {
  const s = `pgark_${checkName('set', set)}_${checkName('subscriber', subscriber)}`;
  if (s.length > 63) throw new InvalidInputError(`set and subscriber names together are too long for a slot name ('${s}', at most 63 characters)`);
  return s;
}

export function parseOperations(text: string | undefined): Operation[] {
  if (text === undefined) return [...OPERATIONS];
  const ops = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (ops.length === 0) throw new InvalidInputError('--operations: name at least one of insert, update, delete, truncate');
  for (const o of ops) if (!OPERATIONS.includes(o as Operation)) throw new InvalidInputError(`--operations: unknown operation '${o.slice(0, 32)}' (insert, update, delete, truncate)`);
  return OPERATIONS.filter((o) => ops.includes(o));
}

export function serializeSetMeta(m: SetMeta): string {
  return JSON.stringify(m);
}

/** Parse a publication comment; undefined when it is not pgark metadata. */
export function parseSetMeta(comment: string | null | undefined, pubname: string): SetMeta | undefined {
  if (!comment) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(comment);
  } catch {
    return undefined;
  }
  const m = v as Partial<SetMeta>;
  const ok = typeof m === 'object' && m !== null && m.format === SET_META_FORMAT && typeof m.set === 'string' &&
    setOfPublication(pubname) === m.set && typeof m.scope === 'object' && Array.isArray(m.operations) &&
    Array.isArray(m.tables) && Array.isArray(m.subscribers);
  return ok ? (m as SetMeta) : undefined;
}
