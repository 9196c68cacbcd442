/**
 * known_hosts parsing and host key verification (pure: the caller reads the file).
 *
 * Supported, as OpenSSH's sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" describes it:
 * - plain host patterns, comma-separated, with `*` and `?` wildcards and `!` negation;
 * - `[host]:port` names for servers on a port other than 22;
 * - hashed names `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>` (HashKnownHosts yes);
 * - key types ssh-ed25519, ecdsa-sha2-nistp256/384/521 and ssh-rsa (any type is compared as
 *   bytes; these are the ones ssh2 negotiates);
 * - `@revoked` lines (a matching key is refused); `@cert-authority` lines are ignored (host
 *   certificates are not supported).
 *
 * A host key is accepted only when a line for the host holds exactly the offered key, or when
 * it matches the pinned fingerprint. Nothing is ever accepted blindly.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  hosts: { kind: 'hashed'; salt: Buffer; hash: Buffer } | { kind: 'patterns'; patterns: string[] };
  keyType: string;
  key: Buffer;
}

/** Parse known_hosts text; comments, blank and malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hostField, keyType, keyB64] = fields;
    if (!hostField || !keyType || !keyB64) continue;
    const key = decodeBase64Strict(keyB64);
    if (!key) continue;
    // The blob names its own type; a line whose type field disagrees is corrupt.
    if (keyTypeOfBlob(key) !== keyType) continue;
    let hosts: KnownHostEntry['hosts'];
    if (hostField.startsWith('|1|')) {
      const parts = hostField.split('|');
      const salt = parts.length === 4 ? decodeBase64Strict(parts[2] ?? '') : undefined;
      const hash = parts.length === 4 ? decodeBase64Strict(parts[3] ?? '') : undefined;
      if (!salt || !hash || hash.length !== 20) continue;
      hosts = { kind: 'hashed', salt, hash };
    } else if (hostField.startsWith('|')) {
      continue; // an unknown hash scheme
    } else {
      hosts = { kind: 'patterns', patterns: hostField.toLowerCase().split(',').filter((p) => p !== '') };
    }
    out.push({ line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return out;
}

function decodeBase64Strict(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined;
  const buf = Buffer.from(s, 'base64');
  return buf.length > 0 ? buf : undefined;
}

/** The name a known_hosts line is matched against: `host`, or `[host]:port` when port != 22. */
export function hostLookupName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** OpenSSH-style wildcard match: `*` any run of characters, `?` exactly one. */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = hostLookupName(host, port);
  if (entry.hosts.kind === 'hashed') {
    const mac = createHmac('sha1', entry.hosts.salt).update(name).digest();
    return timingSafeEqual(mac, entry.hosts.hash);
  }
  let matched = false;
  for (const pat of entry.hosts.patterns) {
    if (pat.startsWith('!')) {
      if (wildcardMatch(pat.slice(1), name)) return false;
    } else if (wildcardMatch(pat, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type a public key blob names (its first SSH string), e.g. 'ssh-ed25519'. */
export function keyTypeOfBlob(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || blob.length < 4 + len) return undefined;
  const type = blob.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(type) ? type : undefined;
}

/** `SHA256:<base64, unpadded>` of a public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Canonical form of a pinned fingerprint (`SHA256:` + unpadded base64), or undefined if malformed. */
export function normalizeFingerprint(s: string): string | undefined {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(s.trim());
  return m ? `SHA256:${m[1]}` : undefined;
}

/** Host key algorithms ssh2 can negotiate, per known_hosts key type. */
const ALGORITHMS_BY_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};
export const DEFAULT_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/**
 * Host key algorithms to offer, those of keys already known for the host first (as OpenSSH
 * does), so that a server with several host keys presents the one known_hosts holds.
 */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const first: string[] = [];
  for (const e of entries) {
    if (e.marker || !entryMatchesHost(e, host, port)) continue;
    for (const a of ALGORITHMS_BY_KEY_TYPE[e.keyType] ?? []) if (!first.includes(a)) first.push(a);
  }
  return [...first, ...DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

export type HostKeyVerdict =
  | { ok: true; via: 'known_hosts' | 'fingerprint'; fingerprint: string; keyType: string }
  | {
      ok: false;
      reason: 'unknown' | 'mismatch' | 'revoked' | 'fingerprint-mismatch';
      fingerprint: string;
      keyType: string;
      /** known_hosts line numbers relevant to the verdict (the differing or revoked keys). */
      lines: number[];
      /** Key types known_hosts holds for the host (for 'unknown' when only other types are known). */
      knownTypes: string[];
    };

/**
 * Decide about an offered host key: with `pinned` set, only the fingerprint counts; otherwise a
 * non-revoked known_hosts line for the host must hold the same key.
 */
export function checkHostKey(o: { offered: Buffer; host: string; port: number; entries?: readonly KnownHostEntry[]; pinned?: string }): HostKeyVerdict {
  const fingerprint = fingerprintOf(o.offered);
  const keyType = keyTypeOfBlob(o.offered) ?? 'unknown-type';
  if (o.pinned !== undefined) {
    const pinned = normalizeFingerprint(o.pinned);
    if (pinned !== undefined && pinned === fingerprint) return { ok: true, via: 'fingerprint', fingerprint, keyType };
    return { ok: false, reason: 'fingerprint-mismatch', fingerprint, keyType, lines: [], knownTypes: [] };
  }
  const entries = o.entries ?? [];
  const revoked = entries.filter((e) => e.marker === 'revoked' && e.key.equals(o.offered) && entryMatchesHost(e, o.host, o.port));
  if (revoked.length > 0) return { ok: false, reason: 'revoked', fingerprint, keyType, lines: revoked.map((e) => e.line), knownTypes: [] };
  const forHost = entries.filter((e) => e.marker === undefined && entryMatchesHost(e, o.host, o.port));
  if (forHost.some((e) => e.key.equals(o.offered))) return { ok: true, via: 'known_hosts', fingerprint, keyType };
  const sameType = forHost.filter((e) => e.keyType === keyType);
  if (sameType.length > 0) return { ok: false, reason: 'mismatch', fingerprint, keyType, lines: sameType.map((e) => e.line), knownTypes: [] };
  return { ok: false, reason: 'unknown', fingerprint, keyType, lines: [], knownTypes: [...new Set(forHost.map((e) => e.keyType))] };
}

/** `ssh-keyscan` -t value for a key type. */
function keyscanType(keyType: string): string {
  if (keyType === 'ssh-ed25519') return 'ed25519';
  if (keyType.startsWith('ecdsa-')) return 'ecdsa';
  if (keyType === 'ssh-rsa') return 'rsa';
  return keyType;
}

/**
 * The message for a refused host key: what was offered and what to do. Holds no key material
 * beyond the fingerprint.
 */
export function hostKeyRefusal(v: Extract<HostKeyVerdict, { ok: false }>, o: { host: string; port: number; knownHostsFile: string; knownHostsMissing?: boolean; pinned?: string }): string {
  const where = o.port === 22 ? o.host : `${o.host}:${o.port}`;
  const offered = `the server offered ${v.keyType} key ${v.fingerprint}`;
  const keyscan = `ssh-keyscan ${o.port === 22 ? '' : `-p ${o.port} `}-t ${keyscanType(v.keyType)} ${o.host} >> ${o.knownHostsFile}`;
  const pin = `or pin it with ssh-host-key-fingerprint=${v.fingerprint} (PGARK_SSH_HOST_KEY_FINGERPRINT)`;
  switch (v.reason) {
    case 'fingerprint-mismatch':
      return `host key verification failed for ${where}: ${offered}, which does not match the pinned ssh-host-key-fingerprint ${o.pinned ?? ''}`.trimEnd() +
        '; if the server key was changed on purpose, pin the new fingerprint after checking it on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)';
    case 'revoked':
      return `host key verification failed for ${where}: ${offered}, which ${o.knownHostsFile} marks @revoked (line ${v.lines.join(', ')})`;
    case 'mismatch':
      return (
        `host key verification failed for ${where}: ${offered}, but ${o.knownHostsFile} holds a different ${v.keyType} key for it (line ${v.lines.join(', ')}). ` +
        `Someone may be intercepting the connection, or the server key was changed: if it was changed on purpose, check the new fingerprint on the server, ` +
        `remove the old entry (ssh-keygen -R '${hostLookupName(o.host, o.port)}' -f ${o.knownHostsFile}) and add the new one (${keyscan}), ${pin}`
      );
    case 'unknown': {
      const file = o.knownHostsMissing ? `${o.knownHostsFile} (which does not exist)` : o.knownHostsFile;
      const other = v.knownTypes.length > 0 ? ` (it holds only ${v.knownTypes.join(', ')} keys for this host)` : '';
      return (
        `host key verification failed for ${where}: ${offered}, and it is not in ${file}${other}. ` +
        `Check the fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_${keyscanType(v.keyType)}_key.pub), then add it: ${keyscan}, ${pin}`
      );
    }
  }
}
