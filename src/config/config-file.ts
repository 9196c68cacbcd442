/**
 * Config file format (INI-like):
 *
 *   # comment            ; comment
 *   [global]
 *   repo = /var/lib/pgark      # a comment after a value
 *   [main]                     # a stanza's own section overrides [global]
 *   pgdata = /var/lib/postgresql/15/main
 *
 * Keys are the long option names. Values run to the end of the line, trimmed; quotes are not
 * interpreted. Comments: a line whose first non-blank character is '#' or ';', and, on any
 * other line, everything from the first '#' or ';' that follows a space or tab (Python
 * configparser's inline-comment rule). A '#' or ';' with no blank before it is part of the
 * value (`a#b`). bin/pgark-wal-push reads `repo` with the same rule (its awk program).
 * Unknown keys and sections with bad names are errors that name the line.
 */
import { ConfigError } from '../common/errors.js';
import { SETTINGS } from './schema.js';

export type ConfigSections = Map<string, Map<string, string>>;

const KNOWN = new Set<string>(SETTINGS.map((s) => s.key).filter((k) => k !== 'stanza'));

/** The line without its comment (see the format above), trimmed. */
export function stripConfigComment(raw: string): string {
  const line = raw.trim();
  if (line.startsWith('#') || line.startsWith(';')) return '';
  const m = /[ \t][#;]/.exec(line);
  return (m ? line.slice(0, m.index) : line).trim();
}

export function parseConfigFile(text: string, source: string): ConfigSections {
  const sections: ConfigSections = new Map();
  let current: Map<string, string> | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const where = `${source}:${i + 1}`;
    const line = stripConfigComment(raw);
    if (line === '') return;
    const section = /^\[([A-Za-z0-9_.-]{1,64})\]$/.exec(line);
    if (section) {
      const name = section[1]!;
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const kv = /^([a-z][a-z0-9-]*)[ \t]*=[ \t]*(.*)$/.exec(line);
    if (!kv) throw new ConfigError(`unable to parse '${where}': expected '[section]' or 'key = value'`);
    if (!current) throw new ConfigError(`unable to parse '${where}': setting outside a section (start with [global])`);
    const key = kv[1]!;
    if (!KNOWN.has(key)) throw new ConfigError(`unable to parse '${where}': unknown setting '${key}'`);
    current.set(key, kv[2]!.trim());
  });
  return sections;
}
