/**
 * archive_command / restore_command parsing (src/ops/archive-command.ts, src/ops/shell-words.ts):
 * shell words, %-escapes, the ways pgark is started, --repo/--stanza/--config and env
 * assignments, and the verdict for a repository and stanza.
 */
import { describe, expect, it } from 'vitest';
import { buildRestoreCommand } from '../../src/common/self-command.js';
import { buildArchiveCommand, classifyCommand, expandPercent, parseArchiveCommand, PLACEHOLDER, redactCommand, repoIdentity, sameRepository, showWord } from '../../src/ops/archive-command.js';
import { parseShell, ShellSyntaxError } from '../../src/ops/shell-words.js';

const words = (s: string) => parseShell(s).commands.map((c) => c.words.map((w) => w.text));

describe('shell words', () => {
  it.each([
    ['a b  c', [['a', 'b', 'c']]],
    ["'a b' \"c d\" e\\ f", [['a b', 'c d', 'e f']]],
    ["'it'\\''s'", [["it's"]]],
    ['"a\\"b\\\\c\\d"', [['a"b\\c\\d']]],
    ['a; b && c || d | e & f', [['a'], ['b'], ['c'], ['d'], ['e'], ['f']]],
    ['a >/dev/null 2>&1 b', [['a', 'b']]],
    ['a # comment here', [['a']]],
    ['a#b', [['a#b']]],
    ['a \\\nb', [['a', 'b']]],
    ['(a)', [['a']]],
    ['', []],
  ])('%j', (input, expected) => {
    expect(words(input)).toEqual(expected);
  });

  it('keeps redirections apart from arguments and records the operators', () => {
    const p = parseShell('cp %p /x/%f > /dev/null 2>&1 && echo ok');
    expect(p.commands[0]).toEqual({ words: [{ text: 'cp', dynamic: false, quotedFrom: 2 }, { text: '%p', dynamic: false, quotedFrom: 2 }, { text: '/x/%f', dynamic: false, quotedFrom: 5 }], redirects: ['>/dev/null', '2>&1'] });
    expect(p.operators).toEqual(['&&']);
    expect(parseShell('a;').operators).toEqual([]);
  });

  it.each([
    ['$HOME/x', true],
    ['"$HOME"', true],
    ["'$HOME'", false],
    ['\\$HOME', false],
    ['`pwd`', true],
    ['/x/*', true],
    ['~/x', true],
    ['a~b', false],
  ])('dynamic: %s -> %s', (input, dynamic) => {
    expect(parseShell(input).commands[0]!.words[0]!.dynamic).toBe(dynamic);
  });

  it.each(["'open", '"open', 'a \\', 'a >'])('rejects %j', (input) => {
    expect(() => parseShell(input)).toThrow(ShellSyntaxError);
  });
});

describe('percent escapes', () => {
  it.each([
    ['%p', PLACEHOLDER.p],
    ['%f %r', `${PLACEHOLDER.f} ${PLACEHOLDER.r}`],
    ['100%%', '100%'],
    ['%%p', '%p'],
    ['%x', '%x'],
  ])('%s', (input, expected) => {
    expect(expandPercent(input)).toBe(expected);
    expect(showWord(expandPercent(input))).toBe(input.replace(/%%/g, '%'));
  });
});

describe('parsing pgark commands', () => {
  it.each([
    ['pgark wal-push %p --repo /r', { client: 'pgark', subcommand: 'wal-push', repo: '/r', positionals: [PLACEHOLDER.p] }],
    ["'/usr/bin/node' '/opt/pgark/bin/pgark.js' wal-push %p --repo '/r' --stanza 'db1'", { client: 'node', subcommand: 'wal-push', repo: '/r', stanza: 'db1' }],
    ['node --max-old-space-size=256 /opt/pgark/bin/pgark.js --repo=/r --stanza=s wal-push %p', { client: 'node', subcommand: 'wal-push', repo: '/r', stanza: 's' }],
    ['/opt/pgark/bin/pgark-wal-push %p --repo /r', { client: 'pgark-wal-push', subcommand: 'wal-push', repo: '/r' }],
    ['pgark-wal-fetch %f %p --repo s3://b/p', { client: 'pgark-wal-fetch', subcommand: 'wal-fetch', repo: 's3://b/p', positionals: [PLACEHOLDER.f, PLACEHOLDER.p] }],
    ['npx --yes pgark wal-push %p --repo /r', { client: 'npx', subcommand: 'wal-push', repo: '/r' }],
    ['node --require /opt/trace.js /opt/pgark/bin/pgark.js wal-push %p --repo /r', { client: 'node', subcommand: 'wal-push', repo: '/r', unknownPrefix: [] }],
    ['PGARK_REPO=/r PGARK_STANZA=s pgark wal-push %p', { repo: '/r', repoFrom: 'env', stanza: 's' }],
    ['env PGARK_REPO=/r exec nice -n 10 pgark wal-push %p', { repo: '/r', repoFrom: 'env' }],
    ['PGARK_REPO=/e pgark wal-push %p --repo /f', { repo: '/f', repoFrom: 'flag' }],
    ['timeout -s KILL 60 pgark wal-push %p --config /etc/x.conf', { config: '/etc/x.conf', repo: undefined }],
    ['pgark wal-push %p --push-ahead 32 --json --repo /r', { repo: '/r', positionals: [PLACEHOLDER.p] }],
    ['pgark wal-push %p --repo /a%%b', { repo: '/a%b' }],
  ])('%s', (input, expected) => {
    const p = parseArchiveCommand(input);
    expect(p.kind).toBe('pgark');
    const { repoFrom, repo, stanza, config, ...rest } = expected as Record<string, unknown>;
    expect(p).toMatchObject(rest);
    if ('repo' in expected) expect(p.repo?.value).toBe(repo);
    if (stanza !== undefined) expect(p.stanza?.value).toBe(stanza);
    if (config !== undefined) expect(p.config?.value).toBe(config);
    if (repoFrom !== undefined) expect(p.repo?.from).toBe(repoFrom);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['cp %p /mnt/archive/%f', 'other'],
    ['/bin/true', 'other'],
    ['rsync -a %p backup:/srv/pgark', 'other'],
    ['node /opt/other.js %p', 'other'],
    ["cp %p '/x", 'unparsable'],
  ])('%j is %s', (input, kind) => {
    expect(parseArchiveCommand(input).kind).toBe(kind);
  });

  it('notes wrappers it does not know, compound commands and env -i', () => {
    expect(parseArchiveCommand('chpst -u postgres pgark wal-push %p --repo /r').unknownPrefix).toEqual(['chpst', '-u', 'postgres']);
    expect(parseArchiveCommand('pgark wal-push %p --repo /r && echo done').compound).toBe(true);
    expect(parseArchiveCommand('pgark wal-push %p --repo /r &').compound).toBe(true);
    expect(parseArchiveCommand('pgark wal-push %p --repo /r').compound).toBe(false);
    expect(parseArchiveCommand('env -i pgark wal-push %p').envCleared).toBe(true);
  });
});

describe('repository identity', () => {
  it.each([
    ['/var/lib/pgark', '/var/lib/pgark/', true],
    ['/var/lib/pgark', 'file:///var/lib/pgark', true],
    ['/var/lib//pgark/./', '/var/lib/pgark', true],
    ['/var/lib/pgark', '/var/lib/pgark2', false],
    ['s3://bucket/prefix/', 's3://bucket/prefix', true],
    ['s3://bucket/a', 's3://bucket/b', false],
    ['S3://Bucket/a', 's3://bucket/a', true],
  ])('%s ~ %s: %s', (a, b, same) => {
    expect(sameRepository(a, b)).toBe(same);
  });

  it('keeps what it cannot parse as it is', () => {
    expect(repoIdentity('not a url')).toBe('not a url');
  });
});

describe('classifying a command for a repository and stanza', () => {
  const target = { repo: '/var/lib/pgark', stanza: 'main' };
  it.each([
    ['pgark wal-push %p --repo /var/lib/pgark', 'ours', /runs pgark wal-push for repository '\/var\/lib\/pgark', stanza 'main'/],
    ['pgark wal-push %p --repo file:///var/lib/pgark/ --stanza main', 'ours', /stanza 'main'/],
    ['PGARK_REPO=/var/lib/pgark pgark-wal-push %p', 'ours', /runs pgark wal-push/],
    ['cp %p /mnt/%f', 'foreign', /'cp %p \/mnt\/%f' does not run pgark/],
    ['/bin/true', 'foreign', /does not run pgark/],
    ['', 'foreign', /archive_command is empty/],
    ['pgark wal-fetch %f %p --repo /var/lib/pgark', 'foreign', /runs 'pgark wal-fetch', not 'pgark wal-push'/],
    ['pgark wal-push --repo /var/lib/pgark', 'foreign', /without %p/],
    ['pgark wal-push %p --repo /srv/other', 'foreign', /archives to repository '\/srv\/other', not '\/var\/lib\/pgark'/],
    ['pgark wal-push %p --repo /var/lib/pgark --stanza other', 'foreign', /uses stanza 'other', not 'main'/],
    ['pgark wal-push %p', 'unknown', /cannot tell: archive_command names no repository \(--repo\), so PGARK_REPO in the server's environment or the config file decides/],
    ['env -i pgark wal-push %p', 'unknown', /so the config file decides/],
    ['pgark wal-push %p --repo $REPO', 'unknown', /from a shell expansion \('\$REPO'\)/],
    ['chpst -u postgres pgark wal-push %p --repo /var/lib/pgark', 'unknown', /through 'chpst -u postgres'/],
    ['pgark wal-push %p --repo /var/lib/pgark || true', 'unknown', /combines pgark with other shell commands/],
  ])('%j -> %s', (cmd, verdict, reason) => {
    const c = classifyCommand(cmd, 'wal-push', target);
    expect(c.verdict).toBe(verdict);
    expect(c.reason).toMatch(reason);
  });

  it('a command without --stanza uses main: unknown for another stanza', () => {
    expect(classifyCommand('pgark wal-push %p --repo /r', 'wal-push', { repo: '/r', stanza: 'db1' })).toMatchObject({ verdict: 'unknown', reason: expect.stringMatching(/names no stanza/) });
  });

  it('names what the config file says when the command relies on it', () => {
    const c = classifyCommand('pgark wal-push %p --config /etc/p.conf', 'wal-push', target, { path: '/etc/p.conf', repo: '/var/lib/pgark' });
    expect(c).toMatchObject({ verdict: 'unknown', reason: expect.stringMatching(/the config file \/etc\/p\.conf gives '\/var\/lib\/pgark'/) });
  });

  it('restore_command: wal-fetch with %f and %p', () => {
    expect(classifyCommand('pgark wal-fetch %f %p --repo /var/lib/pgark', 'wal-fetch', target).verdict).toBe('ours');
    expect(classifyCommand('pgark wal-fetch %p --repo /var/lib/pgark', 'wal-fetch', target)).toMatchObject({ verdict: 'foreign', reason: expect.stringMatching(/without %f %p/) });
    expect(classifyCommand("cp /mnt/%f '%p'", 'wal-fetch', target)).toMatchObject({ verdict: 'foreign', reason: expect.stringMatching(/^restore_command .* does not run pgark/) });
  });
});

describe('credentials in commands shown in messages', () => {
  it.each([
    ['AWS_SECRET_ACCESS_KEY=abc123 aws s3 cp %p s3://b/%f', 'AWS_SECRET_ACCESS_KEY=*** aws s3 cp %p s3://b/%f'],
    ["env PGPASSWORD='p w' psql -c x", 'env PGPASSWORD=*** psql -c x'],
    ['curl --token s3cr3t -T %p https://h/%f', 'curl --token *** -T %p https://h/%f'],
    ['rsync %p rsync://user:hunter2@host/mod/%f', 'rsync %p rsync://user:***@host/mod/%f'],
    ['cp %p /mnt/keys/%f', 'cp %p /mnt/keys/%f'],
    ['pgark wal-push %p --repo /var/lib/pgark', 'pgark wal-push %p --repo /var/lib/pgark'],
  ])('%s', (input, shown) => {
    expect(redactCommand(input)).toBe(shown);
  });

  it('classification reasons never carry them', () => {
    const c = classifyCommand('AWS_SECRET_ACCESS_KEY=abc123 aws s3 cp %p s3://b/%f', 'wal-push', { repo: '/r', stanza: 'main' });
    expect(c.reason).not.toContain('abc123');
    expect(classifyCommand('chpst -e TOKEN=abc123 pgark wal-push %p --repo /r', 'wal-push', { repo: '/r', stanza: 'main' }).reason).not.toContain('abc123');
  });
});

describe('the commands setup writes read back as pgark for their repository and stanza', () => {
  const cases = [
    { repo: '/var/lib/pgark', stanza: 'main' },
    { repo: "/srv/it's 100% safe", stanza: 'db.1', config: '/etc/pgark/pgark.conf' },
    { repo: 's3://bucket/prefix', stanza: 'x', extra: ['--s3-endpoint', 'http://127.0.0.1:9000', '--s3-path-style', 'true'] },
  ];
  it.each(cases)('%j', (c) => {
    const o = { node: '/usr/bin/node', script: '/opt/pgark/bin/pgark.js', ...c };
    const archive = buildArchiveCommand(o);
    expect(classifyCommand(archive, 'wal-push', c)).toMatchObject({ verdict: 'ours' });
    expect(classifyCommand(archive, 'wal-push', { ...c, stanza: 'other' }).verdict).toBe('foreign');
    const p = parseArchiveCommand(archive);
    expect(p.repo?.value).toBe(c.repo);
    expect(p.config?.value).toBe(c.config);
    const restore = buildRestoreCommand(o);
    expect(classifyCommand(restore, 'wal-fetch', c)).toMatchObject({ verdict: 'ours' });
  });

  // An installed pgark (the .deb's /usr/bin/pgark, the tarball's bin/pgark) writes its launcher alone.
  it.each([
    ['/usr/bin/pgark', { repo: '/var/lib/pgark', stanza: 'main' }],
    ['/opt/pgark/bin/pgark', { repo: "/srv/it's 100% safe", stanza: 'db.1', config: '/etc/pgark/pgark.conf' }],
    ["/opt/my pg'ark/bin/pgark", { repo: 's3://bucket/prefix', stanza: 'x', extra: ['--s3-path-style', 'true'] }],
  ])('launcher %s', (launcher, c) => {
    const o = { launcher, ...c };
    const archive = buildArchiveCommand(o);
    expect(classifyCommand(archive, 'wal-push', c)).toMatchObject({ verdict: 'ours' });
    expect(classifyCommand(archive, 'wal-push', { ...c, repo: '/elsewhere' }).verdict).toBe('foreign');
    const p = parseArchiveCommand(archive);
    expect(p).toMatchObject({ kind: 'pgark', client: 'pgark', subcommand: 'wal-push', positionals: [PLACEHOLDER.p], unknownPrefix: [] });
    expect(p.repo?.value).toBe(c.repo);
    const restore = buildRestoreCommand(o);
    expect(classifyCommand(restore, 'wal-fetch', c)).toMatchObject({ verdict: 'ours' });
  });

  it('an installed launcher is written alone, quoted, with % doubled', () => {
    expect(buildArchiveCommand({ launcher: '/usr/bin/pgark', repo: '/var/lib/pgark', stanza: 'main' }))
      .toBe("'/usr/bin/pgark' wal-push %p --repo '/var/lib/pgark' --stanza 'main'");
    expect(buildArchiveCommand({ launcher: '/opt/100%/bin/pgark', repo: '/r', stanza: 'main' }))
      .toBe("'/opt/100%%/bin/pgark' wal-push %p --repo '/r' --stanza 'main'");
    expect(() => buildArchiveCommand({ launcher: 'bin/pgark', repo: '/r', stanza: 'main' }))
      .toThrow(/^invalid pgark command 'bin\/pgark' for archive_command: must be an absolute path/);
  });

  it('doubles % and quotes every argument', () => {
    expect(buildArchiveCommand({ node: '/usr/bin/node', script: '/p/bin/pgark.js', repo: '/r/100%', stanza: 'main' }))
      .toBe("'/usr/bin/node' '/p/bin/pgark.js' wal-push %p --repo '/r/100%%' --stanza 'main'");
  });

  it.each([
    [{ repo: 'relative/path' }, /must be an absolute path/],
    [{ repo: '/r\n' }, /newline/],
    [{ stanza: '' }, /empty/],
    [{ config: 'pgark.conf' }, /--config 'pgark.conf' for archive_command: must be an absolute path/],
  ])('rejects %j', (bad, msg) => {
    expect(() => buildArchiveCommand({ node: '/usr/bin/node', script: '/p/bin/pgark.js', repo: '/r', stanza: 'main', ...bad })).toThrow(msg);
  });
});
