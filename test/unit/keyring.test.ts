/** The stanza keyring: wrap/unwrap, wrong KEK, MAC, rotation, passphrases, key sources. */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IntegrityError, KeyError } from '../../src/common/errors.js';
import { deriveKek, isRawKey, newKeyring, openKeyring, parseKeyring, rewrapKeyring, serializeKeyring, sharedKeyring, withoutKey } from '../../src/repo/keyring.js';
import { keyEnvSource, keyFileSource, keySourceOf } from '../../src/repo/repo-cipher.js';

const HEX1 = randomBytes(32).toString('hex');
const HEX2 = randomBytes(32).toString('hex');

function stored(kek: ReturnType<typeof deriveKek>, body: ReturnType<typeof newKeyring>['body']) {
  return parseKeyring(serializeKeyring(kek, body).toString('utf8'), 'main/keyring.json');
}

describe('keyring', () => {
  it('64 hex digits are a raw key, anything else a passphrase', () => {
    expect(isRawKey(`${HEX1}\n`)).toBe(true);
    expect(isRawKey(HEX1.slice(1))).toBe(false);
    expect(deriveKek(HEX1, 'x').info.kdf).toBe('none');
    expect(() => deriveKek('short', 'env X')).toThrow(KeyError);
  });

  it('opens under its KEK; the wrong KEK is a KeyError naming both key ids, and no key material', () => {
    const k1 = deriveKek(HEX1, "key file '/a'");
    const k2 = deriveKek(HEX2, "key file '/b'");
    const { body, dataKeys } = newKeyring(k1, 'main', false);
    const open = openKeyring(stored(k1, body), k1, 'a', 'main');
    expect(open.dataKeys.get(1)).toEqual(dataKeys.get(1));
    let err: unknown;
    try {
      openKeyring(stored(k1, body), k2, "key file '/b'", 'main');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyError);
    const msg = (err as Error).message;
    expect(msg).toContain(k1.info.id);
    expect(msg).toContain(k2.info.id);
    expect(msg).not.toContain(HEX1);
    expect(msg).not.toContain(HEX2);
  });

  it('an altered keyring fails its MAC (allowPlain switched on, current key changed) or its stanza', () => {
    const k1 = deriveKek(HEX1, 'a');
    const { body } = newKeyring(k1, 'main', false);
    const doc = JSON.parse(serializeKeyring(k1, body).toString('utf8')) as { keyring: { allowPlain: boolean } };
    doc.keyring.allowPlain = true;
    expect(() => openKeyring(parseKeyring(JSON.stringify(doc), 'k'), k1, 'a', 'main')).toThrow(/fails its MAC/);
    expect(() => openKeyring(stored(k1, body), k1, 'a', 'other')).toThrow(IntegrityError);
  });

  it('rotation re-wraps the same data keys: the old KEK no longer opens it; --new-data-key adds key 2', () => {
    const k1 = deriveKek(HEX1, 'a');
    const k2 = deriveKek(HEX2, 'b');
    const first = newKeyring(k1, 'main', false);
    const open1 = openKeyring(stored(k1, first.body), k1, 'a', 'main');
    const rotated = rewrapKeyring(open1, k2, false);
    const open2 = openKeyring(stored(k2, rotated.body), k2, 'b', 'main');
    expect(open2.dataKeys.get(1)).toEqual(first.dataKeys.get(1));
    expect(() => openKeyring(stored(k2, rotated.body), k1, 'a', 'main')).toThrow(KeyError);
    const again = rewrapKeyring(open2, k2, true);
    const open3 = openKeyring(stored(k2, again.body), k2, 'b', 'main');
    expect(open3.body.current).toBe(2);
    expect(open3.dataKeys.get(1)).toEqual(first.dataKeys.get(1));
    expect(open3.dataKeys.get(2)).not.toEqual(first.dataKeys.get(1));
    expect(() => withoutKey(open3, 2)).toThrow(/current key/);
    expect(withoutKey(open3, 1).keys.map((k) => k.n)).toEqual([2]);
  });

  it('a shared keyring holds the same data keys under the other KEK only; no key in the clear; same stanza only', () => {
    const k1 = deriveKek(HEX1, 'a');
    const k2 = deriveKek(HEX2, 'b');
    const first = newKeyring(k1, 'main', false);
    const open1 = openKeyring(stored(k1, first.body), k1, 'a', 'main');
    const rotated = rewrapKeyring(open1, k1, true);
    const open2 = openKeyring(stored(k1, rotated.body), k1, 'a', 'main');
    const body = sharedKeyring(open2, k2, 'main', true);
    expect(body).toMatchObject({ stanza: 'main', kek: { id: k2.info.id }, current: 2, allowPlain: true });
    const doc = serializeKeyring(k2, body);
    const shared = openKeyring(parseKeyring(doc.toString('utf8'), 'main/keyring.json'), k2, 'b', 'main');
    expect([...shared.dataKeys.keys()]).toEqual([1, 2]);
    for (const n of [1, 2]) {
      expect(shared.dataKeys.get(n)!.equals(open2.dataKeys.get(n)!)).toBe(true);
      expect(doc.includes(Buffer.from(open2.dataKeys.get(n)!.toString('hex')))).toBe(false);
      expect(doc.includes(open2.dataKeys.get(n)!)).toBe(false);
      expect(doc.includes(Buffer.from(open2.dataKeys.get(n)!.toString('base64')))).toBe(false);
    }
    // The source's KEK does not open it.
    expect(() => openKeyring(parseKeyring(doc.toString('utf8'), 'x'), k1, 'a', 'main')).toThrow(KeyError);
    expect(() => sharedKeyring(open2, k2, 'other', false)).toThrow(KeyError);
  });

  it('a passphrase is stretched with scrypt and the keyring salt', () => {
    const pass = 'correct horse battery staple\n';
    const k = deriveKek(pass, 'env P');
    expect(k.info.kdf).toBe('scrypt');
    const { body } = newKeyring(k, 'main', false);
    const again = deriveKek(pass, 'env P', stored(k, body).body.kek);
    expect(again.key).toEqual(k.key);
    expect(() => openKeyring(stored(k, body), deriveKek('correct horse battery stapler', 'env P', body.kek), 'env P', 'main')).toThrow(KeyError);
  });

  it('key sources: a file readable by everyone is refused; an unset variable is a KeyError; not both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgark-key-'));
    const f = join(dir, 'kek');
    writeFileSync(f, HEX1);
    chmodSync(f, 0o644);
    await expect(keyFileSource(f).read()).rejects.toThrow(/chmod 600/);
    chmodSync(f, 0o600);
    expect(await keyFileSource(f).read()).toBe(HEX1);
    await expect(keyEnvSource('PGARK_TEST_NO_SUCH_VAR', {}).read()).rejects.toThrow(/PGARK_TEST_NO_SUCH_VAR .*not set/);
    expect(await keyEnvSource('K', { K: HEX2 }).read()).toBe(HEX2);
    expect(() => keySourceOf({ cipherKeyFile: f, cipherKeyEnv: 'K' })).toThrow(KeyError);
    expect(() => keyEnvSource('not a name')).toThrow(KeyError);
  });
});
