// Comments in the config file, read the same way by the three places that read it: the CLI
// (src/config), the shell fast path bin/pgark-wal-push (its awk program, run here exactly as
// the script holds it) and src/wal/fast-path.cjs (which resolves no repository from the file: a
// push record then never answers, the CLI does).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { stripConfigComment } from '../../src/config/config-file.js';
import { resolveSettings } from '../../src/config/resolve.js';
import { formatPushRecord, pushRecordDir, pushTarget } from '../../src/wal/fast-path.js';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pgark-config-comments-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, text);
  return p;
}

/** [config text, stanza, the repo it resolves to (null: the file is refused)] */
const CASES: [string, string, string | null][] = [
  ['[global]\nrepo = /var/lib/pgark   # backup disk\n', 'main', '/var/lib/pgark'],
  ['[global]\nrepo = /var/lib/pgark\t; backup disk\n', 'main', '/var/lib/pgark'],
  ['[global]\nrepo = /var/lib/pgark #\n', 'main', '/var/lib/pgark'],
  ['[global]\nrepo = /srv/pg#ark\n', 'main', '/srv/pg#ark'],
  ['[global]\nrepo = /srv/a;b  # c ; d\n', 'main', '/srv/a;b'],
  ['[global]   # defaults\nrepo = /g\n[main]   # per-stanza overrides\nrepo = /m  # its own\n', 'main', '/m'],
  ['[global]   # defaults\nrepo = /g\n[main]   # per-stanza overrides\nrepo = /m  # its own\n', 'db2', '/g'],
  ['[global];x\nrepo = /g\n', 'main', null],
  ['  # indented comment\n\t; another\n[global]\n  repo=/x#y ;z\n', 'main', '/x#y'],
  ['[global]\r\nrepo = /w   # c\r\n', 'main', '/w'],
  ['[global]\n;repo = /no\n# repo = /no\nrepo = /yes\n', 'main', '/yes'],
  ['[global]\nrepo = /a # one\nrepo = /b # two\n', 'main', '/b'],
  ['[main]#x\nrepo = /x\n', 'main', null],
  ['[global]\nrepo = # nothing\n', 'main', null],
  ['[main]\nrepo =\n[global]\nrepo = /g\n', 'main', null],
  ['repo = /x  # outside a section\n', 'main', null],
  ['[global]\nrepo /x\n', 'main', null],
];

function viaCli(text: string, stanza: string): string | null {
  try {
    return resolveSettings({ config: file(text), stanza }, {}).repo ?? null;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return null;
  }
}

const AWK_PROGRAM = (() => {
  const script = readFileSync(join(root, 'bin', 'pgark-wal-push'), 'utf8');
  const m = /repo=\$\(awk -v st="\$stanza" '([^']*)' "\$config"/.exec(script);
  if (!m) throw new Error('the awk program of bin/pgark-wal-push was not found');
  return m[1]!;
})();

function viaAwk(text: string, stanza: string): string | null {
  const r = spawnSync('awk', ['-v', `st=${stanza}`, AWK_PROGRAM, file(text)], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout === '' ? null : r.stdout.replace(/\n$/, '');
}

describe('config comments: the CLI and bin/pgark-wal-push read the same repo', () => {
  it.each(CASES)('%j (stanza %s) -> %j', (text, stanza, want) => {
    expect(viaCli(text, stanza)).toBe(want);
    expect(viaAwk(text, stanza)).toBe(want);
  });

  it('stripConfigComment', () => {
    expect(stripConfigComment('  key = v  # c')).toBe('key = v');
    expect(stripConfigComment('# all')).toBe('');
    expect(stripConfigComment('key = http://h/p#frag')).toBe('key = http://h/p#frag');
  });

  it('src/wal/fast-path.cjs resolves no repository from a config file (the CLI answers)', () => {
    const fastPath = createRequire(import.meta.url)(join(root, 'src', 'wal', 'fast-path.cjs')) as { callTarget(argv: string[], env: NodeJS.ProcessEnv): string | undefined };
    const cfg = file('[global]\nrepo = /var/lib/pgark   # backup disk\n');
    expect(fastPath.callTarget(['node', 'pgark', 'wal-push', 'x', '--config', cfg], { PGARK_CONFIG: cfg })).toBeUndefined();
  });
});

describe('bin/pgark-wal-push answers from a record of the repo of a config with comments', () => {
  it('exits 0 without starting node', () => {
    const wal = join(dir, 'pg_wal');
    mkdirSync(pushRecordDir(wal), { recursive: true });
    const seg = join(wal, '000000010000000000000003');
    writeFileSync(seg, Buffer.alloc(1000, 1));
    const st = statSync(seg, { bigint: true });
    const target = pushTarget('/var/lib/pgark', 'main');
    writeFileSync(join(pushRecordDir(wal), '000000010000000000000003'), formatPushRecord({ ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs }, 'a'.repeat(64), target));
    const cfg = file('[global]   # defaults\nrepo = /var/lib/pgark   # backup disk\n[main]   # per-stanza overrides\npush-ahead = 32\n');
    // A "node" that fails: the script must not need it.
    const fakeNode = join(dir, 'no-node');
    writeFileSync(fakeNode, '#!/bin/sh\necho "full path taken" >&2\nexit 99\n', { mode: 0o755 });
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, PGARK_NODE: fakeNode, PGARK_CONFIG: cfg };
    const r = spawnSync(join(root, 'bin', 'pgark-wal-push'), [seg], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
