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
 * Unknown keys, sections with bad names and values of the wrong type (config/setting-check.ts)
 * are errors that name the file and line (`/etc/pgark/pgark.conf:12`).
 */
import { ConfigError } from '../common/errors.js';
import { SETTINGS, type SettingSpec } from './schema.js';
import { checkSetting } from './setting-check.js';

export type ConfigSections = Map<string, Map<string, string>>;

/** A value and where it was read (`file:line`). */
export interface ConfigEntry {
  value: string;
  where: string;
}
export type ConfigEntries = Map<string, Map<string, ConfigEntry>>;

const SPECS = new Map<string, SettingSpec>(SETTINGS.filter((s) => s.key !== 'stanza').map((s) => [s.key, s]));

/** The line without its comment (see the format above), trimmed. */
export function stripConfigComment(raw: string): string {
  const line = raw.trim();
  if (line.startsWith('#') || line.startsWith(';')) return '';
  const m = /[ \t][#;]/.exec(line);
  return (m ? line.slice(0, m.index) : line).trim();
}

/** The sections of a config file, values checked for their type (ConfigError naming `source:line`). */
export function parseConfigFile(text: string, source: string): ConfigSections {
  return new Map([...parseConfigEntries(text, source)].map(([name, keys]) => [name, new Map([...keys].map(([k, e]) => [k, e.value]))]));
}

/** Like parseConfigFile, with where each value was read. */
export function parseConfigEntries(text: string, source: string): ConfigEntries {
  const sections: ConfigEntries = new Map();
  let current: Map<string, ConfigEntry> | undefined;
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
    const spec = SPECS.get(key);
    if (!spec) throw new ConfigError(`unable to parse '${where}': unknown setting '${key}'`);
    const value = kv[2]!.trim();
    checkSetting(spec, value, where, true);
    current.set(key, { value, where });
  });
  return sections;
}

/** Merge `later` into `into` (files read in order: a later file's value wins, key by key). */
export function mergeConfigEntries(into: ConfigEntries, later: ConfigEntries): ConfigEntries {
  for (const [name, keys] of later) {
    const section = into.get(name) ?? new Map<string, ConfigEntry>();
    into.set(name, section);
    for (const [k, e] of keys) section.set(k, e);
  }
  return into;
}

/** The files of an include directory that are read, in the order they are read: `*.conf`, by name (byte order). */
export function includeFileOrder(names: readonly string[]): string[] {
  return names.filter((n) => n.endsWith('.conf') && n.length > '.conf'.length).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
