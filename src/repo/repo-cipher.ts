/**
 * Encryption as one Repository sees it: where the key-encryption key comes from (a file or an
 * environment variable named by a setting: the key itself never travels), the stanza's keyring
 * read once on first use, and what encode/decode need from it (docs/ENCRYPTION.md).
 *
 * Everything under `<stanza>/` but the keyring itself is encrypted when the stanza has a keyring;
 * the repository marker (outside every stanza) and the keyring never are.
 */
import { readFile, stat } from 'node:fs/promises';
import { KeyError, NotFoundError } from '../common/errors.js';
import { deriveKek, openKeyring, parseKeyring, type Kek, type KeyringBody, type OpenKeyring } from './keyring.js';
import type { DecryptKeys, EncryptWith } from './object-stream.js';

export function keyringKey(stanza: string): string {
  return `${stanza}/keyring.json`;
}

/** Where the key-encryption key comes from. `describe` names the place, never the key. */
export interface KeySource {
  describe: string;
  read(): Promise<string>;
}

/** The KEK source the settings name, or undefined when none is configured. */
export function keySourceOf(s: { cipherKeyFile?: string | undefined; cipherKeyEnv?: string | undefined }, env: NodeJS.ProcessEnv = process.env): KeySource | undefined {
  if (s.cipherKeyFile !== undefined && s.cipherKeyEnv !== undefined) {
    throw new KeyError('both cipher-key-file and cipher-key-env are set: give one');
  }
  if (s.cipherKeyFile !== undefined) return keyFileSource(s.cipherKeyFile);
  if (s.cipherKeyEnv !== undefined) return keyEnvSource(s.cipherKeyEnv, env);
  return undefined;
}

export function keyFileSource(path: string): KeySource {
  const describe = `key file '${path}'`;
  return {
    describe,
    async read() {
      let st;
      try {
        st = await stat(path);
      } catch (err) {
        throw new KeyError(`unable to read the ${describe}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      if (!st.isFile()) throw new KeyError(`the ${describe} is not a regular file`);
      if (st.mode & 0o007) throw new KeyError(`the ${describe} is readable or writable by every user (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
      return readFile(path, 'utf8');
    },
  };
}

export function keyEnvSource(name: string, env: NodeJS.ProcessEnv = process.env): KeySource {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new KeyError(`cipher-key-env must name an environment variable, not '${name.slice(0, 40)}…'`);
  const describe = `environment variable ${name}`;
  return {
    describe,
    read() {
      const v = env[name];
      if (v === undefined) return Promise.reject(new KeyError(`the ${describe} (cipher-key-env) is not set`));
      return Promise.resolve(v);
    },
  };
}

/** The stanza's encryption state as loaded: no keyring, or a keyring (opened when a key is configured). */
type State = { kind: 'plain' } | { kind: 'locked'; body: KeyringBody } | { kind: 'open'; ring: OpenKeyring };

/** How long "this stanza has no keyring" is believed before it is looked at again. */
export const PLAIN_RECHECK_MS = 60_000;

export class RepoCipher {
  private state: Promise<State> | undefined;
  private plainSince: number | undefined;

  constructor(
    readonly stanza: string,
    private readonly source: KeySource | undefined,
    /** The keyring document (plain object), or null when there is none. */
    private readonly loadKeyring: () => Promise<Buffer | null>,
  ) {}

  /** Whether `key` is encrypted when its stanza has a keyring. */
  covers(key: string): boolean {
    return key.startsWith(`${this.stanza}/`) && key !== keyringKey(this.stanza);
  }

  private async load(): Promise<State> {
    const text = await this.loadKeyring();
    if (!text) return { kind: 'plain' };
    const parsed = parseKeyring(text.toString('utf8'), keyringKey(this.stanza));
    if (!this.source) return { kind: 'locked', body: parsed.body };
    const material = await this.source.read();
    const kek: Kek = deriveKek(material, this.source.describe, parsed.body.kek);
    return { kind: 'open', ring: openKeyring(parsed, kek, this.source.describe, this.stanza) };
  }

  private current(): Promise<State> {
    // "No keyring" is looked at again after a minute: a long-running agent or receiver must not go
    // on storing plain objects once `pgark key init` encrypted the stanza (one stat a minute).
    if (this.state && this.plainSince !== undefined && Date.now() - this.plainSince > PLAIN_RECHECK_MS) this.state = undefined;
    if (!this.state) {
      const loading = this.load();
      this.plainSince = undefined;
      void loading.then((st) => {
        if (st.kind === 'plain') this.plainSince = Date.now();
      }, () => undefined);
      // A failed load (storage error) is retried by the next call.
      loading.catch(() => {
        if (this.state === loading) this.state = undefined;
      });
      this.state = loading;
    }
    return this.state;
  }

  /** Forget what was loaded (after this process rewrote the keyring). */
  reset(): void {
    this.state = undefined;
  }

  private locked(body: KeyringBody, what: string): KeyError {
    return new KeyError(
      `stanza '${this.stanza}' is encrypted: ${what} needs its keyring's key-encryption key ${body.kek.id}; ` +
      'configure cipher-key-file or cipher-key-env (--cipher-key-file FILE, --cipher-key-env VAR)',
    );
  }

  /** How to encrypt a new object under `key`; undefined when it is stored plain. */
  async forWrite(key: string): Promise<EncryptWith | undefined> {
    if (!this.covers(key)) return undefined;
    const s = await this.current();
    if (s.kind === 'plain') {
      if (this.source) {
        throw new KeyError(
          `a key-encryption key is configured (${this.source.describe}) but stanza '${this.stanza}' has no keyring: ` +
          `nothing was written; run 'pgark key init' to encrypt it, or remove the cipher setting`,
        );
      }
      return undefined;
    }
    if (s.kind === 'locked') throw this.locked(s.body, `storing '${key}'`);
    const n = s.ring.body.current;
    return { keyNumber: n, dataKey: s.ring.dataKeys.get(n)!, objectName: key };
  }

  /** What decoding `key` needs; undefined outside the stanza (the marker, the keyring). */
  async forRead(key: string): Promise<DecryptKeys | undefined> {
    if (!this.covers(key)) return undefined;
    const s = await this.current();
    if (s.kind === 'plain') return undefined;
    if (s.kind === 'locked') throw this.locked(s.body, `reading '${key}'`);
    return { plainAllowed: s.ring.body.allowPlain, dataKey: (n) => this.dataKey(n, key) };
  }

  /** Data key `n`; the keyring is read again once when it does not hold it (a newer data key). */
  async dataKey(n: number, key: string): Promise<Buffer> {
    let s = await this.current();
    for (let pass = 0; ; pass++) {
      if (s.kind === 'plain') throw new KeyError(`unable to read '${key}': it is encrypted (data key ${n}) but stanza '${this.stanza}' has no keyring`);
      if (s.kind === 'locked') throw this.locked(s.body, `reading '${key}' (data key ${n})`);
      const k = s.ring.dataKeys.get(n);
      if (k) return k;
      if (pass > 0) {
        throw new KeyError(`unable to read '${key}': it needs data key ${n}, which the keyring of stanza '${this.stanza}' does not hold (retired?)`);
      }
      this.reset();
      s = await this.current();
    }
  }

  /**
   * Data key `n` when this stanza's keyring holds it, else undefined (no keyring, or no such key;
   * `pgark copy` then re-encrypts). A locked keyring is a KeyError.
   */
  async heldDataKey(n: number): Promise<Buffer | undefined> {
    const s = await this.current();
    if (s.kind === 'plain') return undefined;
    if (s.kind === 'locked') throw this.locked(s.body, `copying into it (data key ${n})`);
    return s.ring.dataKeys.get(n);
  }

  /** The opened keyring (key commands). */
  async open(): Promise<OpenKeyring> {
    const s = await this.current();
    if (s.kind === 'plain') throw new NotFoundError(keyringKey(this.stanza), `stanza '${this.stanza}' has no keyring (it is not encrypted)`);
    if (s.kind === 'locked') throw this.locked(s.body, 'this');
    return s.ring;
  }

  /** The keyring body without opening it (key list works without the key). */
  async body(): Promise<KeyringBody | undefined> {
    const s = await this.current();
    return s.kind === 'plain' ? undefined : s.kind === 'locked' ? s.body : s.ring.body;
  }

  get keySource(): KeySource | undefined {
    return this.source;
  }
}

