/** What a Repository's cipher decides per key: plain, encrypted, refused (exit 15), and when it looks again. */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KeyError } from '../../src/common/errors.js';
import { deriveKek, newKeyring, serializeKeyring } from '../../src/repo/keyring.js';
import { keyringKey, PLAIN_RECHECK_MS, RepoCipher, type KeySource } from '../../src/repo/repo-cipher.js';

const HEX = randomBytes(32).toString('hex');
const source = (material: string): KeySource => ({ describe: 'test key', read: () => Promise.resolve(material) });
const kek = deriveKek(HEX, 'test');
const ring = serializeKeyring(kek, newKeyring(kek, 'main', false).body);

afterEach(() => vi.restoreAllMocks());

describe('RepoCipher', () => {
  it('covers everything under the stanza but the keyring; never the marker or another stanza', () => {
    const c = new RepoCipher('main', undefined, () => Promise.resolve(null));
    expect(c.covers('main/wal/00000001/0000000100000000/000000010000000000000001')).toBe(true);
    expect(c.covers('main/stanza.json')).toBe(true);
    expect(c.covers(keyringKey('main'))).toBe(false);
    expect(c.covers('.pgark-repository')).toBe(false);
    expect(c.covers('mainx/stanza.json')).toBe(false);
  });

  it('no keyring, no key: plain; a key but no keyring: writes refused (nothing stored in plain), reads plain', async () => {
    const plain = new RepoCipher('main', undefined, () => Promise.resolve(null));
    expect(await plain.forWrite('main/x')).toBeUndefined();
    const keyed = new RepoCipher('main', source(HEX), () => Promise.resolve(null));
    await expect(keyed.forWrite('main/x')).rejects.toThrow(/no keyring: nothing was written; run 'pgark key init'/);
    expect(await keyed.forRead('main/x')).toBeUndefined();
  });

  it('a keyring and no key: every read and write of the stanza is a KeyError naming the key id', async () => {
    const c = new RepoCipher('main', undefined, () => Promise.resolve(ring));
    await expect(c.forWrite('main/x')).rejects.toThrow(KeyError);
    await expect(c.forRead('main/x')).rejects.toThrow(kek.info.id);
    expect(await c.forWrite('.pgark-repository')).toBeUndefined();
  });

  it('a keyring and its key: objects are encrypted with the current data key; a wrong key names both ids', async () => {
    const c = new RepoCipher('main', source(HEX), () => Promise.resolve(ring));
    expect(await c.forWrite('main/x')).toMatchObject({ keyNumber: 1, objectName: 'main/x' });
    const wrong = new RepoCipher('main', source(randomBytes(32).toString('hex')), () => Promise.resolve(ring));
    await expect(wrong.forWrite('main/x')).rejects.toThrow(new RegExp(`wrong key: .*${kek.info.id}`));
    const keys = await c.forRead('main/x');
    await expect(keys!.dataKey(7)).rejects.toThrow(/needs data key 7/);
  });

  it('"no keyring" is looked at again after a minute: a long-running writer stops storing plain objects', async () => {
    let stored: Buffer | null = null;
    let loads = 0;
    const c = new RepoCipher('main', undefined, () => {
      loads++;
      return Promise.resolve(stored);
    });
    const t0 = Date.now();
    const now = vi.spyOn(Date, 'now').mockReturnValue(t0);
    expect(await c.forWrite('main/x')).toBeUndefined();
    stored = ring; // pgark key init, elsewhere
    now.mockReturnValue(t0 + PLAIN_RECHECK_MS / 2);
    expect(await c.forWrite('main/x')).toBeUndefined();
    expect(loads).toBe(1);
    now.mockReturnValue(t0 + PLAIN_RECHECK_MS + 1);
    await expect(c.forWrite('main/x')).rejects.toThrow(KeyError);
    expect(loads).toBe(2);
  });
});
