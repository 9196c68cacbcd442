/**
 * Config file format (INI-like):
 *
 *   # comment            ; comment
 *   [global]
 *   repo = /var/lib/pgark
 *   [main]               # a stanza's own section overrides [global]
 *   pgdata = /var/lib/postgresql/15/main
 *
 * Keys are the long option names. Values run to the end of the line, trimmed; quotes are not
 * interpreted. Unknown keys and sections with bad names are errors that name the line.
 */
import { ConfigError } from '../common/errors.js';
import { SETTINGS } from './schema.js';

export type ConfigSections = Map<string, Map<string, string>>;

const KNOWN = new Set<string>(SETTINGS.map((s) => s.key).filter((k) => k !== 'stanza'));

export function parseConfigFile(text: string, source: string): ConfigSections {
  const sections: ConfigSections = new Map();
  let current: Map<string, string> | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const where = `${source}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([A-Za-z0-9_.-]{1,64})\]$/.exec(line);
    if (section) {
      const name = section[1]!;
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const kv = /^([a-z][a-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new ConfigError(`unable to parse '${where}': expected '[section]' or 'key = value'`);
    if (!current) throw new ConfigError(`unable to parse '${where}': setting outside a section (start with [global])`);
    const key = kv[1]!;
    if (!KNOWN.has(key)) throw new ConfigError(`unable to parse '${where}': unknown setting '${key}'`);
    current.set(key, kv[2]!.trim());
  });
  return sections;
}
