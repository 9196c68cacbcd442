import { describe, expect, it } from 'vitest';
import { findAccount, parseGroupLine, parsePasswdLine, type OsAccount } from '../../src/common/os-accounts.js';
import { decideOwner, parseOwnerOption, type OwnerFacts } from '../../src/restore/restore-owner.js';

const USERS: OsAccount[] = [
  { name: 'root', id: 0, gid: 0 },
  { name: 'postgres', id: 105, gid: 112 },
  { name: 'alice', id: 1000, gid: 1000 },
];
const GROUPS: OsAccount[] = [
  { name: 'root', id: 0 },
  { name: 'postgres', id: 112 },
  { name: 'ssl-cert', id: 113 },
  { name: 'alice', id: 1000 },
];
const find = (list: OsAccount[]) => (k: string) => list.find((a) => a.name === k) ?? (/^\d+$/.test(k) ? list.find((a) => a.id === Number(k)) : undefined);
const facts = (f: Partial<OwnerFacts>): OwnerFacts => ({ euid: 0, backupId: '20261207-000000F', lookupUser: find(USERS), lookupGroup: find(GROUPS), ...f });

describe('decideOwner', () => {
  it.each<[string, Partial<OwnerFacts>, unknown]>([
    ['not root, nothing asked: as is', { euid: 1000 }, { kind: 'asIs' }],
    ['not root, --owner is the current user: as is', { euid: 1000, option: 'alice' }, { kind: 'asIs' }],
    ['root, recorded owner by name', { recorded: { uid: 26, gid: 26, user: 'postgres', group: 'postgres' } },
      { kind: 'chown', uid: 105, gid: 112, user: 'postgres', group: 'postgres', source: 'the owner recorded in backup 20261207-000000F' }],
    ['root, recorded group unknown here: the user\'s primary group', { recorded: { uid: 26, gid: 26, user: 'postgres', group: 'pgsql' } },
      { kind: 'chown', uid: 105, gid: 112, user: 'postgres', group: 'postgres' }],
    ['root, recorded by ids only', { recorded: { uid: 1000, gid: 1000 } }, { kind: 'chown', uid: 1000, gid: 1000, user: 'alice' }],
    ['root, --owner user', { option: 'postgres' }, { kind: 'chown', uid: 105, gid: 112, user: 'postgres', group: 'postgres', source: '--owner' }],
    ['root, --owner user:group', { option: 'postgres:ssl-cert' }, { kind: 'chown', uid: 105, gid: 113, group: 'ssl-cert' }],
    ['root, --owner numeric ids', { option: '1000:112' }, { kind: 'chown', uid: 1000, gid: 112, user: 'alice', group: 'postgres' }],
    ['root, --owner wins over the record', { option: 'alice', recorded: { uid: 26, gid: 26, user: 'postgres' } }, { kind: 'chown', user: 'alice', source: '--owner' }],
    ['root, old backup, existing target owned by postgres', { existingDir: { uid: 105, gid: 112 } },
      { kind: 'chown', uid: 105, gid: 112, user: 'postgres', source: 'the owner of the existing target directory (the backup records none)' }],
  ])('%s', (_label, f, expected) => {
    expect(decideOwner(facts(f))).toMatchObject(expected as object);
  });

  it.each<[string, Partial<OwnerFacts>, RegExp]>([
    ['root, old backup, new target', {}, /does not record who owned the data directory .* pass --owner USER\[:GROUP\]/],
    ['root, old backup, target owned by root', { existingDir: { uid: 0, gid: 0 } }, /does not record who owned/],
    ['root, recorded user unknown here', { recorded: { uid: 26, gid: 26, user: 'pgsql' } }, /records the data directory owner 'pgsql' \(uid 26 on the source host\), and there is no such user on this host; pass --owner/],
    ['root, recorded owner is root here', { recorded: { uid: 0, gid: 0, user: 'root' } }, /refuses to run as root/],
    ['--owner root', { option: 'root' }, /--owner root: PostgreSQL refuses to run as root/],
    ['--owner 0', { option: '0' }, /refuses to run as root/],
    ['--owner unknown', { option: 'bob' }, /no user 'bob' on this host/],
    ['--owner unknown group', { option: 'postgres:nope' }, /no group 'nope'/],
    ['--owner malformed', { option: 'a:b:c' }, /invalid --owner 'a:b:c'/],
    ['not root, --owner someone else', { euid: 1000, option: 'postgres' }, /--owner postgres needs root/],
  ])('refuses: %s', (_label, f, message) => {
    const d = decideOwner(facts(f));
    expect(d.kind).toBe('refuse');
    expect((d as { reason: string }).reason).toMatch(message);
  });
});

describe('parsing', () => {
  it('parseOwnerOption', () => {
    expect(parseOwnerOption('postgres')).toEqual({ user: 'postgres' });
    expect(parseOwnerOption(' postgres:ssl-cert ')).toEqual({ user: 'postgres', group: 'ssl-cert' });
    expect(parseOwnerOption('')).toBeUndefined();
    expect(parseOwnerOption('a b')).toBeUndefined();
    expect(parseOwnerOption(':g')).toBeUndefined();
  });
  it('passwd and group lines', () => {
    const passwd = ['root:x:0:0:root:/root:/bin/bash', 'postgres:x:105:112:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash', 'broken:x:y', '', '1000:x:1001:1001::/h:/bin/sh'];
    expect(parsePasswdLine(passwd[1]!)).toEqual({ name: 'postgres', id: 105, gid: 112 });
    expect(parsePasswdLine('broken:x:y')).toBeUndefined();
    expect(findAccount(passwd, 'postgres', parsePasswdLine)?.id).toBe(105);
    expect(findAccount(passwd, '105', parsePasswdLine)?.name).toBe('postgres');
    // A name made of digits is a name first, as getent reads it.
    expect(findAccount(passwd, '1000', parsePasswdLine)?.id).toBe(1001);
    expect(findAccount(passwd, 'nobody', parsePasswdLine)).toBeUndefined();
    expect(parseGroupLine('ssl-cert:x:113:postgres')).toEqual({ name: 'ssl-cert', id: 113 });
    expect(parseGroupLine('bad')).toBeUndefined();
  });
});
