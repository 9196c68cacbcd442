/**
 * libpq connection strings (pure). `pg` understands only the URI form, so the keyword/value
 * form (`host=/tmp port=5433 dbname='my db'`) is parsed here, as libpq parses it, and turned
 * into the equivalent URI. Connection strings with a password are refused (assertNoPassword)
 * before anything connects: argv is visible in the process list, and some (primary_conninfo)
 * would be written into configuration files that backups copy.
 */
import { ConfigError, InvalidInputError } from '../common/errors.js';

/** libpq keywords pgark passes on; anything else is an error rather than silently dropped. */
const KEYWORDS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'application_name', 'options', 'connect_timeout',
  'sslmode', 'sslcert', 'sslkey', 'sslrootcert', 'sslcrl', 'replication', 'target_session_attrs', 'keepalives',
  'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'client_encoding',
]);

/** Parse `keyword = value ...`; values may be single-quoted, with \' and \\ escapes. */
export function parseConninfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= n) return out;
    const kStart = i;
    while (i < n && text[i] !== '=' && !/\s/.test(text[i]!)) i++;
    const key = text.slice(kStart, i);
    skipSpace();
    if (text[i] !== '=') throw new InvalidInputError(`invalid connection string: missing "=" after "${key.slice(0, 40)}"`);
    i++;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new InvalidInputError('invalid connection string: unterminated quoted value');
        const ch = text[i]!;
        if (ch === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else if (ch === "'") {
          i++;
          break;
        } else {
          value += ch;
          i++;
        }
      }
    } else {
      while (i < n && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else {
          value += text[i];
          i++;
        }
      }
    }
    if (!KEYWORDS.has(key)) throw new InvalidInputError(`invalid connection string: unknown keyword "${key.slice(0, 40)}"`);
    out.set(key, value);
  }
}

/** True for the URI form (`postgres://` or `postgresql://`). */
export function isConninfoUri(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text.trim());
}

/** The URI form of a connection string (URIs are returned as they are). */
export function conninfoToUri(text: string): string {
  if (isConninfoUri(text)) return text.trim();
  const kv = parseConninfo(text);
  const params = new URLSearchParams();
  const host = kv.get('host') ?? kv.get('hostaddr');
  const enc = (s: string) => encodeURIComponent(s);
  let authority = '';
  if (host !== undefined && !host.startsWith('/')) {
    authority = host.includes(':') ? `[${host}]` : enc(host);
    const port = kv.get('port');
    if (port !== undefined) authority += `:${port}`;
  } else {
    if (host !== undefined) params.set('host', host);
    if (kv.get('port') !== undefined) params.set('port', kv.get('port')!);
  }
  const user = kv.get('user');
  const userPart = user !== undefined ? `${enc(user)}@` : '';
  const db = kv.get('dbname');
  // pg-connection-string reads the path with decodeURI, which leaves %2F, %40, %3A, %2B, ...
  // encoded: those characters go into the path as they are (only ? and # cannot be expressed).
  const encDb = (s: string) => enc(s).replace(/%(2F|40|3A|2B|2C|3B|3D|26|24)/g, (m) => decodeURIComponent(m));
  for (const [k, v] of kv) {
    if (['host', 'hostaddr', 'port', 'user', 'dbname'].includes(k)) continue;
    params.set(k, v);
  }
  const query = params.toString();
  return `postgresql://${userPart}${authority}/${db !== undefined ? encDb(db) : ''}${query ? `?${query}` : ''}`;
}

/** Keywords whose value is a secret: the password, and the passphrase of the client key. */
const SECRET_KEYWORDS = ['password', 'sslpassword'];

/**
 * True when a connection string carries a password: `password=` (or `sslpassword=`) in the
 * keyword/value form, also when the rest does not parse, and `user:password@` or
 * `?password=` in the URI form. Errs on the side of "yes" for URIs whose userinfo holds an
 * unencoded '/'.
 */
export function conninfoHasPassword(text: string): boolean {
  if (isConninfoUri(text)) {
    const t = text.trim().replace(/^postgres(ql)?:\/\//i, '');
    const authority = t.split(/[/?#]/)[0] ?? '';
    const at = authority.lastIndexOf('@');
    if (at >= 0 && authority.slice(0, at).includes(':')) return true;
    if (/^[^:@/?#]*:[^@]*@/.test(t)) return true;
    const q = t.indexOf('?');
    if (q < 0) return false;
    const params = new URLSearchParams(t.slice(q + 1).split('#')[0]);
    return [...params.keys()].some((k) => SECRET_KEYWORDS.includes(k.toLowerCase()));
  }
  try {
    const kv = parseConninfo(text);
    return SECRET_KEYWORDS.some((k) => kv.has(k));
  } catch {
    return /(?:^|\s)(ssl)?password\s*=/i.test(text);
  }
}

/**
 * Refuse a connection string with a password (ConfigError, exit 2), before anything connects
 * or is written. The one check for --dsn, --primary-conninfo and every other connection string.
 */
export function assertNoPassword(conninfo: string | undefined, flag = '--dsn'): void {
  if (conninfo === undefined || !conninfoHasPassword(conninfo)) return;
  throw new ConfigError(
    `${flag} must not contain a password (it would be visible in the process list, and could be copied into configuration files and backups): ` +
    'put the password in ~/.pgpass of the OS user running pgark (or of the server, for primary_conninfo), or in a file named by PGPASSFILE',
  );
}
