/**
 * The type check of one setting's value (pure), wherever it comes from: a flag, the environment
 * or a config file line (`origin` names it: `--jobs`, `PGARK_JOBS`, `/etc/pgark/pgark.conf:12`).
 * Returns the value as pgark uses it (a number for 'int', 'true'/'false' for 'bool').
 *
 * - 'path': in a config file an absolute path (or `~/...` where the setting allows it): a
 *   relative path there would depend on the working directory of whoever runs pgark
 *   (PostgreSQL runs archive_command in the data directory, cron in the home directory). From a
 *   flag or the environment a relative path is taken as given, relative to the working directory,
 *   like any command-line tool's.
 * - 'location' (repo): an absolute path or a `scheme://` URL, wherever it comes from (which
 *   schemes have a driver is for the registry of storage drivers to say).
 * - 'url': an http:// or https:// URL without credentials, query or fragment (`bareHost`: or
 *   host[:port]); its text is never echoed (a pasted token is a secret).
 * - 'duration': <number><unit> parts, units w d h m s, largest first (catalog/retention.ts
 *   parseDuration is the same rule; test/unit/setting-check.test.ts checks that they agree).
 */
import { isAbsolute } from 'node:path';
import { ConfigError } from '../common/errors.js';
import { maskSecrets } from '../common/log-format.js';
import type { SettingSpec } from './schema.js';

const DURATION_RE = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

export function checkSetting(spec: SettingSpec, value: string, origin: string, fromFile: boolean): string | number {
  const bad = (why: string, echo = true) => new ConfigError(`invalid value ${echo ? `'${maskSecrets(value)}' ` : ''}for '${spec.key}' (from ${origin}): ${why}`);
  if (value === '' && spec.type !== 'enum') throw new ConfigError(`empty value for '${spec.key}' (from ${origin})`);
  switch (spec.type) {
    case 'int': {
      if (!/^-?\d+$/.test(value)) throw bad('expected an integer');
      const n = Number(value);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) throw bad(`must be between ${spec.min} and ${spec.max}`);
      return n;
    }
    case 'bool': {
      const v = value.toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(v)) return 'true';
      if (['false', 'no', 'off', '0'].includes(v)) return 'false';
      throw bad('expected true or false');
    }
    case 'enum':
      if (!spec.values?.includes(value)) throw bad(`expected one of ${spec.values?.join(', ')}`);
      return value;
    case 'path':
      if (fromFile && !isAbsolute(value) && !(spec.home && (value === '~' || value.startsWith('~/')))) {
        throw bad(`expected an absolute path${spec.home ? ' (or ~/...)' : ''}: a relative one would depend on the working directory of whoever runs pgark`);
      }
      return value;
    case 'location':
      if (isAbsolute(value)) return value;
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/./.test(value)) {
        throw new ConfigError(`invalid repository '${maskSecrets(value)}' (from ${origin}): expected an absolute path or a URL such as file:///var/lib/pgark, ssh://, s3://, azure:// or gs://`);
      }
      return value;
    case 'url': {
      if (spec.bareHost && !value.includes('://') && /^[A-Za-z0-9.-]+(:\d{1,5})?(\/[^?#\s]*)?$/.test(value)) return value;
      let u: URL;
      try {
        u = new URL(value);
      } catch {
        throw bad(`expected an http:// or https:// URL${spec.bareHost ? ' or host[:port]' : ''}`, false);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('expected an http:// or https:// URL', false);
      if (u.username || u.password || u.search || u.hash) throw bad('no credentials, query or fragment in an endpoint URL', false);
      return value;
    }
    case 'duration': {
      const m = DURATION_RE.exec(value);
      if (!m || m.slice(1).every((p) => p === undefined) || m.slice(1).every((p) => p === undefined || Number(p) === 0)) {
        throw bad('expected a duration such as 7d, 36h, 2w or 1d12h (units w, d, h, m, s, largest first)');
      }
      return value;
    }
    default:
      return value;
  }
}
