import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  entryMatchesHost,
  fingerprintOf,
  hostKeyRefusal,
  hostLookupName,
  keyTypeOfBlob,
  normalizeFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  wildcardMatch,
} from '../../storage-drivers/ssh/known-hosts.js';

// Real keys and fingerprints from ssh-keygen (OpenSSH 9.2): `ssh-keygen -l -E sha256 -f key.pub`.
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIDz1rlJte16hhjohTc0qgeCOaWG+K1HDT4FTip3gffpY';
const ED_FP = 'SHA256:/RCaZ9+HbPiyUGA4yUqiWs5En8gmRenZwvz4aopC7mY';
const EC =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFyLgBuUyoAmwaLZQVSrXNB3bTTRhDX6+9KMpogCjzqVN9baFSK1WzEMINSKRMcktY7dR3V60hwpwq2LZO8mkBE=';
const EC_FP = 'SHA256:c0MRFJ6POuawJZ2pfMLJ4IoSGX3rCoRDzfviky26JrU';
const RSA =
  'AAAAB3NzaC1yc2EAAAADAQABAAAAgQDBRMIbT77OAymbSYyyBzFR1FF9RBnxEyZxLbalMrWjl4PJnn/9itMggUy9d7QhfRjUf3yWnsE7fx4qcecEQOEQc24AUJLm2+dQ7gaBWpUdsOx4IgFXCLdCYeQ1+n7BO7Pj2pocqtizWfWhERQqSTcnWyg8z8LOV2M9bny98vdCqQ==';
const RSA_FP = 'SHA256:oP04yGPLXClAycXA34kzdRc7qWCyvtat1hKGRDOezEo';
/** `ssh-keygen -H` of `[127.0.0.1]:2222 ssh-ed25519 ED`. */
const HASHED_2222 = '|1|KjwgDxeRmnQkw3VI1bLHBUENP+Y=|TtT6YGlpk2/Xhxq4Nu870QxNwqA=';

const blob = (b64: string): Buffer => Buffer.from(b64, 'base64');

/** A syntactically valid ed25519 blob that is not ED. */
function otherEd25519(fill: number): Buffer {
  const type = Buffer.from('ssh-ed25519');
  const out = Buffer.alloc(4 + type.length + 4 + 32, fill);
  out.writeUInt32BE(type.length, 0);
  type.copy(out, 4);
  out.writeUInt32BE(32, 4 + type.length);
  return out;
}

function hashedName(name: string, salt: Buffer): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('fingerprints and key types', () => {
  it.each([
    [ED, ED_FP, 'ssh-ed25519'],
    [EC, EC_FP, 'ecdsa-sha2-nistp256'],
    [RSA, RSA_FP, 'ssh-rsa'],
  ])('computes what ssh-keygen -l prints for %#', (key, fp, type) => {
    expect(fingerprintOf(blob(key))).toBe(fp);
    expect(keyTypeOfBlob(blob(key))).toBe(type);
  });

  it.each([
    [ED_FP, ED_FP],
    [`${ED_FP}=`, ED_FP],
    [`  ${ED_FP} `, ED_FP],
    ['SHA256:short', undefined],
    ['MD5:aa:bb', undefined],
    [ED_FP.replace('SHA256:', 'sha256:'), undefined],
    ['', undefined],
  ])('normalizes the pinned fingerprint %j', (input, expected) => {
    expect(normalizeFingerprint(input)).toBe(expected);
  });

  it.each([
    [Buffer.alloc(0)],
    [Buffer.from([0, 0, 0, 0])],
    [Buffer.from([0, 0, 0, 200, 1, 2])],
    [Buffer.from([0, 0, 0, 3, 0x61, 0x0a, 0x62])],
  ])('rejects malformed blob %#', (b) => {
    expect(keyTypeOfBlob(b)).toBeUndefined();
  });
});

describe('host names and patterns', () => {
  it.each([
    ['example.com', 22, 'example.com'],
    ['Example.COM', 22, 'example.com'],
    ['example.com', 2222, '[example.com]:2222'],
    ['127.0.0.1', 40001, '[127.0.0.1]:40001'],
    ['::1', 22, '::1'],
    ['::1', 2200, '[::1]:2200'],
  ])('lookup name of %s port %d is %s', (host, port, name) => {
    expect(hostLookupName(host, port)).toBe(name);
  });

  it.each([
    ['*', 'anything', true],
    ['*.example.com', 'db.example.com', true],
    ['*.example.com', 'example.com', false],
    ['db?.example.com', 'db1.example.com', true],
    ['db?.example.com', 'db12.example.com', false],
    ['[127.0.0.1]:*', '[127.0.0.1]:2222', true],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['exact', 'exact', true],
    ['exact', 'exactly', false],
  ])('wildcard %j vs %j -> %s', (pattern, text, expected) => {
    expect(wildcardMatch(pattern, text)).toBe(expected);
  });
});

describe('parseKnownHosts', () => {
  const salt = Buffer.from('0123456789abcdefghij');
  const text = [
    '# a comment',
    '',
    `backup.example.com,10.0.0.5 ssh-ed25519 ${ED} root@backup`,
    `[backup.example.com]:2222 ecdsa-sha2-nistp256 ${EC}`,
    `${HASHED_2222} ssh-ed25519 ${ED}`,
    `${hashedName('hashed.example.com', salt)} ssh-rsa ${RSA}`,
    `*.internal,!secret.internal ssh-ed25519 ${ED}`,
    `@revoked * ssh-rsa ${RSA}`,
    `@cert-authority *.example.com ssh-ed25519 ${ED}`,
    `@bogus-marker host ssh-ed25519 ${ED}`,
    'malformed-line-without-key',
    `host ssh-ed25519 not*base64`,
    `mismatched-type ssh-rsa ${ED}`,
    `|2|unknown|scheme ssh-ed25519 ${ED}`,
    `|1|short ssh-ed25519 ${ED}`,
    `\ttabbed.example.com\tssh-ed25519\t${ED}\r`,
  ].join('\n');
  const entries = parseKnownHosts(text);

  it('keeps the valid lines with their line numbers and markers', () => {
    expect(entries.map((e) => [e.line, e.marker ?? '', e.keyType])).toEqual([
      [3, '', 'ssh-ed25519'],
      [4, '', 'ecdsa-sha2-nistp256'],
      [5, '', 'ssh-ed25519'],
      [6, '', 'ssh-rsa'],
      [7, '', 'ssh-ed25519'],
      [8, 'revoked', 'ssh-rsa'],
      [9, 'cert-authority', 'ssh-ed25519'],
      [16, '', 'ssh-ed25519'],
    ]);
    expect(entries[0]?.key.equals(blob(ED))).toBe(true);
  });

  const line = (n: number) => entries.find((e) => e.line === n)!;
  it.each([
    [3, 'backup.example.com', 22, true],
    [3, 'BACKUP.example.com', 22, true],
    [3, '10.0.0.5', 22, true],
    [3, 'backup.example.com', 2222, false],
    [4, 'backup.example.com', 2222, true],
    [4, 'backup.example.com', 22, false],
    [5, '127.0.0.1', 2222, true],
    [5, '127.0.0.1', 2223, false],
    [5, '127.0.0.1', 22, false],
    [6, 'hashed.example.com', 22, true],
    [6, 'other.example.com', 22, false],
    [7, 'db.internal', 22, true],
    [7, 'secret.internal', 22, false],
    [7, 'db.internal', 2222, false],
    [16, 'tabbed.example.com', 22, true],
  ])('line %d matches %s port %d: %s', (n, host, port, expected) => {
    expect(entryMatchesHost(line(n), host, port)).toBe(expected);
  });
});

describe('checkHostKey', () => {
  const kh = parseKnownHosts(
    [
      `[127.0.0.1]:2222 ssh-ed25519 ${ED}`,
      `hashed-host-placeholder`,
      `ecdsa-only.example.com ecdsa-sha2-nistp256 ${EC}`,
      `@revoked * ssh-rsa ${RSA}`,
      `rsa.example.com ssh-rsa ${RSA}`,
      `${HASHED_2222} ssh-ed25519 ${ED}`,
    ].join('\n'),
  );

  it.each([
    ['the known key', blob(ED), '127.0.0.1', 2222, { ok: true, via: 'known_hosts' }],
    ['a different key of the same type', otherEd25519(7), '127.0.0.1', 2222, { ok: false, reason: 'mismatch', lines: [1, 6] }],
    ['a key for an unknown host', blob(ED), '10.1.1.1', 22, { ok: false, reason: 'unknown', knownTypes: [] }],
    ['a key on another port', blob(ED), '127.0.0.1', 22, { ok: false, reason: 'unknown' }],
    ['a key of a type not known for the host', blob(ED), 'ecdsa-only.example.com', 22, { ok: false, reason: 'unknown', knownTypes: ['ecdsa-sha2-nistp256'] }],
    ['a revoked key, even if listed', blob(RSA), 'rsa.example.com', 22, { ok: false, reason: 'revoked', lines: [4] }],
  ])('%s', (_label, offered, host, port, expected) => {
    const v = checkHostKey({ offered, host, port, entries: kh });
    expect(v).toMatchObject(expected);
    expect(v.fingerprint).toBe(fingerprintOf(offered));
  });

  it('never accepts a key with no known_hosts entries', () => {
    expect(checkHostKey({ offered: blob(ED), host: '127.0.0.1', port: 2222, entries: [] }).ok).toBe(false);
    expect(checkHostKey({ offered: blob(ED), host: '127.0.0.1', port: 2222 }).ok).toBe(false);
  });

  it.each([
    [ED_FP, blob(ED), true],
    [`${ED_FP}=`, blob(ED), true],
    [EC_FP, blob(ED), false],
    ['garbage', blob(ED), false],
  ])('pinned %s', (pinned, offered, ok) => {
    // A pin replaces known_hosts entirely: a known_hosts match does not help a wrong pin.
    const v = checkHostKey({ offered, host: '127.0.0.1', port: 2222, entries: kh, pinned });
    expect(v.ok).toBe(ok);
    if (!v.ok) expect(v.reason).toBe('fingerprint-mismatch');
  });

  it('orders host key algorithms with the known types first', () => {
    expect(preferredHostKeyAlgorithms(kh, 'ecdsa-only.example.com', 22).slice(0, 2)).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
    expect(preferredHostKeyAlgorithms(kh, 'rsa.example.com', 22).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    const all = preferredHostKeyAlgorithms([], 'x', 22);
    expect(all[0]).toBe('ssh-ed25519');
    expect(new Set(all).size).toBe(all.length);
  });

  it('explains refusals with the offered fingerprint and what to do, without key material', () => {
    const ctx = { host: '127.0.0.1', port: 2222, knownHostsFile: '/home/u/.ssh/known_hosts' };
    const mismatch = checkHostKey({ offered: otherEd25519(9), host: '127.0.0.1', port: 2222, entries: kh });
    const unknown = checkHostKey({ offered: blob(ED), host: 'new.example.com', port: 22, entries: kh });
    const pinned = checkHostKey({ offered: blob(ED), host: 'h', port: 22, pinned: EC_FP });
    if (mismatch.ok || unknown.ok || pinned.ok) throw new Error('expected refusals');
    const m = hostKeyRefusal(mismatch, ctx);
    expect(m).toContain(fingerprintOf(otherEd25519(9)));
    expect(m).toContain('different ssh-ed25519 key');
    expect(m).toContain("ssh-keygen -R '[127.0.0.1]:2222'");
    const u = hostKeyRefusal(unknown, { ...ctx, host: 'new.example.com', port: 22, knownHostsMissing: true });
    expect(u).toContain(ED_FP);
    expect(u).toContain('ssh-keyscan -t ed25519 new.example.com >> /home/u/.ssh/known_hosts');
    expect(u).toContain('does not exist');
    expect(u).toContain('ssh-host-key-fingerprint');
    const p = hostKeyRefusal(pinned, { ...ctx, pinned: EC_FP });
    expect(p).toContain(ED_FP);
    expect(p).toContain(EC_FP);
    for (const text of [m, u, p]) {
      expect(text).not.toContain(ED.slice(20, 60));
      expect(text).not.toContain(otherEd25519(9).toString('base64').slice(20, 60));
    }
  });
});
