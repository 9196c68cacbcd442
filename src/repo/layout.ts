/**
 * Repository keys (pure). Everything of a stanza lives under `<stanza>/`:
 *
 *   <stanza>/stanza.json                              stanza metadata (binds it to one cluster)
 *   <stanza>/wal/<TLI>/<TLI>.history                  timeline history files
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>           WAL segments (24 hex digits)
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>.partial   partial segments
 *   <stanza>/wal/<TLI>/<TLI><LOG>/<segment>.<off>.backup   backup history files
 *   <stanza>/log/wal/<YYYY-MM-DD>/<time>-<pid>-<rand>     WAL audit trail, one object per call
 *
 * A timeline's whole WAL is one prefix listing: `<stanza>/wal/<TLI>/`.
 */
import { InvalidInputError } from '../common/errors.js';

export function stanzaMetaKey(stanza: string): string {
  return `${stanza}/stanza.json`;
}

export function walPrefix(stanza: string, timeline?: number): string {
  return timeline === undefined ? `${stanza}/wal/` : `${stanza}/wal/${hex8(timeline)}/`;
}

export function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Key of an archived WAL file (segment, partial, history or backup history) by its name. */
export function walKey(stanza: string, name: string): string {
  if (/^[0-9A-F]{8}\.history$/.test(name)) return `${stanza}/wal/${name.slice(0, 8)}/${name}`;
  if (/^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$/.test(name)) {
    return `${stanza}/wal/${name.slice(0, 8)}/${name.slice(0, 16)}/${name}`;
  }
  throw new InvalidInputError(`invalid WAL file name '${name.slice(0, 64)}'`);
}

/** The WAL file name of a key under walPrefix, or undefined for anything else. */
export function walNameOfKey(key: string): string | undefined {
  const base = key.slice(key.lastIndexOf('/') + 1);
  return /^([0-9A-F]{8}\.history|[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?)$/.test(base) ? base : undefined;
}

export function auditPrefix(stanza: string, day?: string): string {
  return day ? `${stanza}/log/wal/${day}/` : `${stanza}/log/wal/`;
}

export function auditKey(stanza: string, when: Date, pid: number, rand: string): string {
  const iso = when.toISOString(); // 2026-11-23T11:28:18.123Z
  const day = iso.slice(0, 10);
  const time = iso.slice(11, 23).replace(/:/g, '');
  return `${auditPrefix(stanza, day)}${time}-${pid}-${rand}`;
}
