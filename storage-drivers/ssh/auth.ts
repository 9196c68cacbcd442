/**
 * What the ssh driver authenticates with: public keys only.
 *
 * - `ssh-identity` set: that key file only (a passphrase comes from PGARK_SSH_PASSPHRASE).
 * - otherwise: the agent in SSH_AUTH_SOCK (when set), then ~/.ssh/id_ed25519, id_ecdsa, id_rsa
 *   (those that exist; encrypted ones need PGARK_SSH_PASSPHRASE).
 *
 * Passwords and keyboard-interactive are never tried. Messages name key files and public key
 * fingerprints, never key material or the passphrase.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2, { type ParsedKey } from 'ssh2';
import { StorageError } from '../../src/common/errors.js';
import { fingerprintOf } from './known-hosts.js';

export const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export interface KeyIdentity {
  file: string;
  key: ParsedKey;
  /** `ssh-ed25519 SHA256:...` of the public half, for messages. */
  label: string;
}

export interface AuthPlan {
  /** Agent socket path. */
  agent?: string;
  keys: KeyIdentity[];
  /** What was tried, for an authentication failure message. */
  describe: string;
  /** Default key files skipped, with why (for the "no key" message). */
  skipped: string[];
}

function configError(location: string, text: string): StorageError {
  return new StorageError('ssh', `unable to connect to ${location}: ${text}`, { transient: false });
}

/** Parse a private key file; Error text says what is wrong without showing key material. */
function parsePrivateKey(data: Buffer, passphrase: string | undefined, file: string): ParsedKey | string {
  // ssh2 is CommonJS whose `utils` export Node cannot detect statically: use the default import.
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) return `key file ${file} is encrypted: put its passphrase in the environment variable PGARK_SSH_PASSPHRASE`;
    if (passphrase !== undefined && /passphrase/i.test(parsed.message)) return `unable to decrypt key file ${file} with PGARK_SSH_PASSPHRASE (wrong passphrase?)`;
    return `key file ${file} is not a private key ssh2 can read (OpenSSH or PEM format expected)`;
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) return `key file ${file} holds no private key (is it the .pub file?)`;
  return key;
}

function labelOf(key: ParsedKey): string {
  return `${key.type} ${fingerprintOf(key.getPublicSSH())}`;
}

export async function loadAuth(o: { identity?: string; env: NodeJS.ProcessEnv; home: string; location: string }): Promise<AuthPlan> {
  const passphrase = o.env.PGARK_SSH_PASSPHRASE || undefined;
  if (o.identity) {
    let data: Buffer;
    try {
      data = await readFile(o.identity);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw configError(o.location, `unable to read ssh-identity key file ${o.identity}: ${code}`);
    }
    const key = parsePrivateKey(data, passphrase, o.identity);
    if (typeof key === 'string') throw configError(o.location, key);
    const label = labelOf(key);
    return { keys: [{ file: o.identity, key, label }], describe: `key file ${o.identity} (${label})`, skipped: [] };
  }

  const agent = o.env.SSH_AUTH_SOCK || undefined;
  const keys: KeyIdentity[] = [];
  const skipped: string[] = [];
  for (const name of DEFAULT_KEY_FILES) {
    const file = join(o.home, '.ssh', name);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      continue;
    }
    const key = parsePrivateKey(data, passphrase, file);
    if (typeof key === 'string') {
      skipped.push(key);
      continue;
    }
    keys.push({ file, key, label: labelOf(key) });
  }
  if (!agent && keys.length === 0) {
    const why = skipped.length > 0 ? ` (${skipped.join('; ')})` : '';
    throw configError(
      o.location,
      `no SSH key to authenticate with${why}: set ssh-identity (PGARK_SSH_IDENTITY) to a private key file, run an ssh-agent (SSH_AUTH_SOCK), or create ${join(o.home, '.ssh', 'id_ed25519')}`,
    );
  }
  const tried = [...(agent ? [`the ssh-agent at ${agent}`] : []), ...keys.map((k) => `key file ${k.file} (${k.label})`)];
  return { ...(agent ? { agent } : {}), keys, describe: tried.join(', '), skipped };
}
