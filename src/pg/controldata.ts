/** What `pg_controldata` prints that pgark needs (pure parser; run with LC_ALL=C). */
import { InvalidInputError } from '../common/errors.js';

export interface ControlData {
  systemIdentifier: string;
  /** "Database cluster state", e.g. 'shut down', 'in production'. */
  state: string;
  /** Latest checkpoint's REDO location, 'X/Y'. */
  redoLsn: string;
  timeline: number;
  walSegmentSize: number;
}

/** Parse the `Label: value` lines (labels as in src/bin/pg_controldata/pg_controldata.c). */
export function parseControlData(text: string): ControlData {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const need = (label: string, re: RegExp): string => {
    const v = fields.get(label);
    if (v === undefined || !re.test(v)) throw new InvalidInputError(`unable to read pg_controldata output: no valid '${label}'`);
    return v;
  };
  return {
    systemIdentifier: need('Database system identifier', /^\d{1,20}$/),
    state: need('Database cluster state', /./),
    redoLsn: need("Latest checkpoint's REDO location", /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i).toUpperCase(),
    timeline: Number(need("Latest checkpoint's TimeLineID", /^\d+$/)),
    walSegmentSize: Number(need('Bytes per WAL segment', /^\d+$/)),
  };
}
