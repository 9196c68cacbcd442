/**
 * The `--json` output formats (pure). Every `--json` output is one JSON object whose first field
 * is `"format": "pgark.<thing>/1"`; docs/JSON.md describes each, from the JSON Schemas in
 * docs/json-schema/pgark.<thing>.1.json. Within version 1 fields may be added, never removed or
 * changed in type or meaning; anything else is a new version.
 */

/** The command (path, as typed) of every output and its format's name. */
export const JSON_FORMATS = {
  'version': 'version',
  'repo create': 'repo-create',
  'setup': 'setup',
  'check': 'check',
  'wal-push': 'wal-push',
  'wal-verify': 'wal-verify',
  'wal-log': 'wal-log',
  'check-repo': 'check-repo',
  'info': 'info',
  'stanza-upgrade': 'stanza-upgrade',
  'backup': 'backup',
  'list': 'list',
  'show': 'show',
  'restore': 'restore',
  'expire': 'expire',
  'verify': 'verify',
  'copy': 'copy',
  'agent': 'agent',
  'receive': 'receive',
  'clone': 'clone',
  'promote': 'promote',
  'drill': 'drill',
  'drills': 'drills',
  'sets create': 'sets-create',
  'sets add-table': 'sets-table-change',
  'sets remove-table': 'sets-table-change',
  'sets list': 'sets-list',
  'sets drop': 'sets-drop',
  'sets status': 'sets-status',
  'sets subscribe': 'sets-subscribe',
  'slots list': 'slots-list',
  'slots drop': 'slots-drop',
  'key init': 'key-init',
  'key list': 'key-list',
  'key rotate': 'key-rotate',
} as const;

export type JsonFormatName = (typeof JSON_FORMATS)[keyof typeof JSON_FORMATS];

export const JSON_FORMAT_VERSION = 1;

/** `pgark.<thing>/1`. */
export function formatId(thing: JsonFormatName): string {
  return `pgark.${thing}/${JSON_FORMAT_VERSION}`;
}

/**
 * The output object: `format` first, then `body`'s fields. A `format` field of `body` (the
 * numeric format of a stored catalog entry or drill report) is left out: it is the storage
 * format, not the output's.
 */
export function withFormat<T extends object>(thing: JsonFormatName, body: T): { format: string } & Omit<T, 'format'> {
  const { format: _stored, ...rest } = body as T & { format?: unknown };
  return { format: formatId(thing), ...(rest as Omit<T, 'format'>) };
}
