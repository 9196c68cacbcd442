/**
 * The stanza keyring (pure, node:crypto only): random data keys wrapped by a key-encryption key
 * (KEK) the DBA provides; docs/REPOSITORY.md "Encryption".
 *
 * Stored at `<stanza>/keyring.json` (an ordinary plain object, codec none) as
 *   {"keyring": { ...KeyringBody }, "mac": "<hex HMAC-SHA256 of JSON.stringify(keyring) under the KEK's MAC key>"}
 * Each data key is wrapped with AES-256-GCM under the KEK, its AAD naming the stanza, the key
 * number and the KEK id, so a wrapped key moved to another stanza or number fails.
 *
 * KEK material (a key file's content, or an environment variable's value): exactly 64 hex
 * digits (surrounding whitespace ignored) is a raw 256-bit key; anything else is a passphrase,
 * stretched with scrypt (N=2^15, r=8, p=1) and the keyring's salt.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { IntegrityError, KeyError } from '../common/errors.js';

export const KEYRING_FORMAT = 1;
export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;

export interface KekInfo {
  /** 16 hex digits identifying the KEK (an HMAC of a fixed text under it): safe to show. */
  id: string;
  kdf: 'none' | 'scrypt';
  /** scrypt only, base64. */
  salt?: string;
  N?: number;
  r?: number;
  p?: number;
}

export interface WrappedKey {
  n: number;
  createdAt: string;
  /** base64 of iv(12) | ciphertext(32) | tag(16). */
  wrapped: string;
}

export interface KeyringBody {
  format: number;
  kind: 'pgark-keyring';
  stanza: string;
  cipher: 'aes-256-gcm';
  kek: KekInfo;
  /** The data key new objects are encrypted with. */
  current: number;
  keys: WrappedKey[];
  /** Plain objects stored before the keyring (key init on a stanza that had data) are still read. */
  allowPlain: boolean;
  createdAt: string;
  /** When the keyring was last re-wrapped under a new KEK. */
  rotatedAt?: string;
}

/** A KEK ready to use: the 32-byte key and its description. */
export interface Kek {
  key: Buffer;
  info: KekInfo;
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Whether KEK material is a raw key (64 hex digits) rather than a passphrase. */
export function isRawKey(material: string): boolean {
  return HEX_KEY.test(material.trim());
}

export function kekId(key: Buffer): string {
  return createHmac('sha256', key).update('pgark key-encryption key id v1').digest('hex').slice(0, 16);
}

function macKey(key: Buffer): Buffer {
  return createHmac('sha256', key).update('pgark keyring mac v1').digest();
}

/**
 * The KEK from its material. A passphrase needs the keyring's scrypt parameters (`like`); without
 * them (a new keyring) a fresh salt is drawn. `source` names where the material came from (never
 * the material itself) for errors.
 */
export function deriveKek(material: string, source: string, like?: KekInfo): Kek {
  if (material.trim() === '') throw new KeyError(`the key-encryption key from ${source} is empty`);
  if (isRawKey(material)) {
    const key = Buffer.from(material.trim(), 'hex');
    return { key, info: { id: kekId(key), kdf: 'none' } };
  }
  // A passphrase: the bytes as given, except one trailing newline (as a file editor leaves it).
  const pass = material.replace(/\r?\n$/, '');
  if (pass.length < 12) throw new KeyError(`the passphrase from ${source} is shorter than 12 characters (or give a raw key: 64 hex digits)`);
  const p = like?.kdf === 'scrypt' ? like : { kdf: 'scrypt' as const, salt: randomBytes(16).toString('base64'), ...SCRYPT_PARAMS };
  const N = p.N ?? SCRYPT_PARAMS.N;
  const r = p.r ?? SCRYPT_PARAMS.r;
  const pp = p.p ?? SCRYPT_PARAMS.p;
  if (N > 2 ** 20 || r > 32 || pp > 16) throw new IntegrityError('keyring names scrypt parameters beyond the limits pgark accepts');
  const key = scryptSync(Buffer.from(pass, 'utf8'), Buffer.from(p.salt!, 'base64'), 32, { N, r, p: pp, maxmem: 256 * N * r + 1024 * 1024 });
  return { key, info: { id: kekId(key), kdf: 'scrypt', salt: p.salt!, N, r, p: pp } };
}

function wrapAad(stanza: string, n: number, kid: string): Buffer {
  return Buffer.from(`pgark-keyring\0${stanza}\0${n}\0${kid}`, 'utf8');
}

export function wrapKey(kek: Kek, stanza: string, n: number, dataKey: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek.key, iv);
  c.setAAD(wrapAad(stanza, n, kek.info.id));
  const ct = Buffer.concat([c.update(dataKey), c.final()]);
  return Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64');
}

function unwrapKey(kek: Kek, stanza: string, w: WrappedKey): Buffer {
  const b = Buffer.from(w.wrapped, 'base64');
  if (b.length !== 12 + 32 + 16) throw new IntegrityError(`keyring of stanza '${stanza}': wrapped data key ${w.n} is malformed`);
  const d = createDecipheriv('aes-256-gcm', kek.key, b.subarray(0, 12));
  d.setAAD(wrapAad(stanza, w.n, kek.info.id));
  d.setAuthTag(b.subarray(44));
  const key = d.update(b.subarray(12, 44));
  try {
    d.final();
  } catch {
    throw new IntegrityError(`keyring of stanza '${stanza}': data key ${w.n} does not unwrap under key-encryption key ${kek.info.id} (the keyring was altered)`);
  }
  return key;
}

export function keyringMac(kek: Kek, body: KeyringBody): string {
  return createHmac('sha256', macKey(kek.key)).update(JSON.stringify(body)).digest('hex');
}

/** The stored document of a keyring. */
export function serializeKeyring(kek: Kek, body: KeyringBody): Buffer {
  return Buffer.from(JSON.stringify({ keyring: body, mac: keyringMac(kek, body) }, null, 1) + '\n');
}

/** Parse the stored document (shape only: the MAC needs the KEK, see openKeyring). */
export function parseKeyring(text: string, where: string): { body: KeyringBody; mac: string } {
  const bad = (why: string) => new IntegrityError(`unable to read '${where}': not a pgark keyring (${why})`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const d = doc as { keyring?: KeyringBody; mac?: unknown };
  const b = d.keyring;
  if (!b || typeof b !== 'object' || typeof d.mac !== 'string') throw bad('no keyring or mac');
  if (b.kind !== 'pgark-keyring') throw bad('wrong kind');
  if (b.format !== KEYRING_FORMAT) throw bad(`unsupported format ${String(b.format)}`);
  if (b.cipher !== 'aes-256-gcm') throw bad(`unknown cipher ${String(b.cipher)}`);
  if (!b.kek || typeof b.kek.id !== 'string' || (b.kek.kdf !== 'none' && b.kek.kdf !== 'scrypt')) throw bad('bad kek');
  if (b.kek.kdf === 'scrypt' && (typeof b.kek.salt !== 'string' || !Number.isInteger(b.kek.N) || !Number.isInteger(b.kek.r) || !Number.isInteger(b.kek.p))) throw bad('bad scrypt parameters');
  if (!Array.isArray(b.keys) || b.keys.length === 0 || b.keys.some((k) => !Number.isInteger(k.n) || k.n < 1 || k.n > 0xffff || typeof k.wrapped !== 'string' || typeof k.createdAt !== 'string')) throw bad('bad keys');
  if (!b.keys.some((k) => k.n === b.current)) throw bad('current key not in keys');
  if (typeof b.allowPlain !== 'boolean' || typeof b.stanza !== 'string') throw bad('bad fields');
  return { body: b, mac: d.mac };
}

/** An opened keyring: its body and the unwrapped data keys by number. */
export interface OpenKeyring {
  body: KeyringBody;
  kek: Kek;
  dataKeys: Map<number, Buffer>;
}

/**
 * Check the keyring's MAC under the KEK and unwrap every data key. A KEK of another id is a
 * KeyError naming both ids.
 */
export function openKeyring(parsed: { body: KeyringBody; mac: string }, kek: Kek, source: string, stanza: string): OpenKeyring {
  const b = parsed.body;
  if (b.stanza !== stanza) throw new IntegrityError(`the keyring of stanza '${stanza}' names stanza '${b.stanza}'`);
  if (kek.info.id !== b.kek.id) {
    throw new KeyError(
      `wrong key: the keyring of stanza '${stanza}' is wrapped under key-encryption key ${b.kek.id}; the key from ${source} is ${kek.info.id}`,
    );
  }
  const mac = Buffer.from(keyringMac(kek, b), 'hex');
  const theirs = Buffer.from(parsed.mac, 'hex');
  if (theirs.length !== mac.length || !timingSafeEqual(mac, theirs)) {
    throw new IntegrityError(`the keyring of stanza '${stanza}' fails its MAC under key-encryption key ${kek.info.id} (altered)`);
  }
  const dataKeys = new Map<number, Buffer>();
  for (const w of b.keys) dataKeys.set(w.n, unwrapKey(kek, stanza, w));
  return { body: b, kek, dataKeys };
}

/** A new keyring with one random data key. */
export function newKeyring(kek: Kek, stanza: string, allowPlain: boolean, now = new Date()): { body: KeyringBody; dataKeys: Map<number, Buffer> } {
  const dataKey = randomBytes(32);
  const body: KeyringBody = {
    format: KEYRING_FORMAT,
    kind: 'pgark-keyring',
    stanza,
    cipher: 'aes-256-gcm',
    kek: kek.info,
    current: 1,
    keys: [{ n: 1, createdAt: now.toISOString(), wrapped: wrapKey(kek, stanza, 1, dataKey) }],
    allowPlain,
    createdAt: now.toISOString(),
  };
  return { body, dataKeys: new Map([[1, dataKey]]) };
}

/**
 * The keyring re-wrapped under `next` (same data keys), optionally with a new current data key.
 * Data objects are untouched: they name data keys, not the KEK.
 */
export function rewrapKeyring(open: OpenKeyring, next: Kek, newDataKey: boolean, now = new Date()): { body: KeyringBody; dataKeys: Map<number, Buffer> } {
  const dataKeys = new Map(open.dataKeys);
  const stanza = open.body.stanza;
  const keys: WrappedKey[] = open.body.keys.map((w) => ({ n: w.n, createdAt: w.createdAt, wrapped: wrapKey(next, stanza, w.n, dataKeys.get(w.n)!) }));
  let current = open.body.current;
  if (newDataKey) {
    current = Math.max(...keys.map((k) => k.n)) + 1;
    if (current > 0xffff) throw new KeyError('the keyring already holds 65535 data keys');
    const k = randomBytes(32);
    dataKeys.set(current, k);
    keys.push({ n: current, createdAt: now.toISOString(), wrapped: wrapKey(next, stanza, current, k) });
  }
  const body: KeyringBody = { ...open.body, kek: next.info, current, keys, rotatedAt: now.toISOString() };
  return { body, dataKeys };
}

/** The keyring without data key `n` (retire: the caller proved no object uses it). */
export function withoutKey(open: OpenKeyring, n: number): KeyringBody {
  if (n === open.body.current) throw new KeyError(`data key ${n} is the current key of stanza '${open.body.stanza}': rotate with --new-data-key first`);
  if (!open.body.keys.some((k) => k.n === n)) throw new KeyError(`the keyring of stanza '${open.body.stanza}' has no data key ${n}`);
  return { ...open.body, keys: open.body.keys.filter((k) => k.n !== n) };
}

/**
 * A new keyring for `stanza` (in another repository) holding the data keys of `source`, same
 * numbers, same current key, wrapped under `kek` (that repository's KEK): objects encrypted under
 * one repository's keyring then open under the other's, so `pgark copy` moves their stored
 * bytes unchanged. The data keys never leave memory unwrapped.
 */
export function sharedKeyring(source: OpenKeyring, kek: Kek, stanza: string, allowPlain: boolean, now = new Date()): KeyringBody {
  if (source.body.stanza !== stanza) throw new KeyError(`the keyring of stanza '${source.body.stanza}' cannot be shared with stanza '${stanza}'`);
  return {
    format: KEYRING_FORMAT,
    kind: 'pgark-keyring',
    stanza,
    cipher: 'aes-256-gcm',
    kek: kek.info,
    current: source.body.current,
    keys: source.body.keys.map((w) => ({ n: w.n, createdAt: w.createdAt, wrapped: wrapKey(kek, stanza, w.n, source.dataKeys.get(w.n)!) })),
    allowPlain,
    createdAt: now.toISOString(),
  };
}
