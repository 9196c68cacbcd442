/**
 * The systemd units and timers in contrib/systemd/ and the cron file in contrib/cron/: each unit
 * has the sections and keys the conventions require (User=postgres, /etc/pgark/<name>-%i.env,
 * hardening, bounded oneshot runs), every timer and OnSuccess= names a shipped unit, and every
 * pgark command line uses a command and flags pgark has. `systemd-analyze verify` checks them
 * too where it is installed; where it is not, the parser checks are what runs (and say so).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SYSTEMD = join(ROOT, 'contrib', 'systemd');
const CRON = join(ROOT, 'contrib', 'cron', 'pgark');
const files = readdirSync(SYSTEMD).filter((f) => f.endsWith('.service') || f.endsWith('.timer')).sort();

type Unit = Map<string, Map<string, string[]>>;

/** A unit file: sections of keys, each key with its values in order (comments and blanks skipped). */
function parseUnit(text: string, where: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const s = /^\[([A-Za-z]+)\]$/.exec(line);
    if (s) {
      if (unit.has(s[1]!)) throw new Error(`${where}:${i + 1}: section [${s[1]}] twice`);
      unit.set(s[1]!, (section = new Map()));
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`${where}:${i + 1}: not a key=value line in a section: ${line}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  });
  return unit;
}

const units = new Map(files.map((f) => [f, parseUnit(readFileSync(join(SYSTEMD, f), 'utf8'), f)]));
const get = (f: string, section: string, key: string): string[] => units.get(f)?.get(section)?.get(key) ?? [];
const one = (f: string, section: string, key: string): string | undefined => {
  const v = get(f, section, key);
  expect(v, `${f} [${section}] ${key}=`).toHaveLength(1);
  return v[0];
};

/** The shipped unit a reference like `pgark-expire@%i.service` means. */
const template = (ref: string) => ref.replace('@%i.', '@.');

/** pgark argv words of a command line (up to a shell operator), with $VARS dropped. */
function pgarkWords(command: string): string[][] {
  const out: string[][] = [];
  for (const part of command.split(/&&|\|\||;|\|/)) {
    const words = part.trim().split(/\s+/).filter((w) => w !== '' && !w.startsWith('$'));
    const at = words.findIndex((w) => w === 'pgark');
    if (at >= 0 && (at === 0 || words[at - 1] === '/usr/bin/env' || /^out=\$\(pgark$/.test(words[at - 1] ?? ''))) out.push(words.slice(at + 1));
    const sub = /\$\((pgark [^)]*)\)/.exec(part);
    if (sub) out.push(sub[1]!.split(/\s+/).slice(1).filter((w) => !/^\d?>/.test(w)));
  }
  return out;
}

const program = await buildProgram();
/** Fails when `pgark <words>` names a command or flag pgark does not have. */
function assertKnownCommand(words: string[], where: string): void {
  const name = words[0];
  const cmd = program.commands.find((c) => c.name() === name);
  expect(cmd, `${where}: pgark ${name}`).toBeDefined();
  const flags = new Set([...(cmd as Command).options, ...program.options].flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)));
  for (const w of words.slice(1)) {
    if (!w.startsWith('--')) continue;
    const flag = w.split('=')[0]!;
    expect(flags.has(flag), `${where}: pgark ${name} ${flag}`).toBe(true);
  }
}

describe('contrib/systemd', () => {
  it('ships the units and timers the docs describe', () => {
    expect(files).toEqual(expect.arrayContaining([
      'pgark-agent@.service', 'pgark-receive@.service', 'pgark-metrics@.service',
      'pgark-backup@.service', 'pgark-backup@.timer', 'pgark-backup-full@.service', 'pgark-backup-full@.timer',
      'pgark-expire@.service', 'pgark-expire@.timer', 'pgark-verify@.service', 'pgark-verify@.timer',
      'pgark-drill@.service', 'pgark-drill@.timer',
    ]));
  });

  describe.each(files.filter((f) => f.endsWith('.service')))('%s', (f) => {
    it('runs pgark as postgres with the settings file, the stanza from the instance and the hardening', () => {
      expect(one(f, 'Unit', 'Description')).toMatch(/%i/);
      expect(one(f, 'Service', 'User')).toBe('postgres');
      expect(one(f, 'Service', 'Group')).toBe('postgres');
      const role = /^pgark-([a-z-]+)@\.service$/.exec(f)![1]!;
      // The full backup shares pgark-backup@'s settings file.
      expect(one(f, 'Service', 'EnvironmentFile')).toBe(`/etc/pgark/${role === 'backup-full' ? 'backup' : role}-%i.env`);
      const exec = one(f, 'Service', 'ExecStart')!;
      expect(exec).toMatch(/^\/usr\/bin\/env pgark [a-z-]+ --stanza %i /);
      expect(exec).toMatch(/ \$[A-Z]+_OPTS$/);
      expect(one(f, 'Service', 'UMask')).toBe('0077');
      expect(one(f, 'Service', 'NoNewPrivileges')).toBe('yes');
      expect(one(f, 'Service', 'ProtectSystem')).toBe('full');
      for (const words of pgarkWords(exec)) assertKnownCommand(words, f);
      for (const ref of get(f, 'Unit', 'OnSuccess')) expect(files, `${f} OnSuccess=${ref}`).toContain(template(ref));
    });
    const oneshot = /^pgark-(backup|backup-full|expire|verify|drill)@\.service$/.test(f);
    it(oneshot ? 'is a bounded oneshot job, started by its timer' : 'is a long-running service, restarted and enabled', () => {
      if (oneshot) {
        expect(one(f, 'Service', 'Type')).toBe('oneshot');
        expect(one(f, 'Service', 'TimeoutStartSec')).toMatch(/^\d+h$/);
        expect(units.get(f)!.has('Install')).toBe(false);
        expect(files).toContain(f.replace(/\.service$/, '.timer'));
      } else {
        expect(one(f, 'Service', 'Type')).toBe('simple');
        expect(one(f, 'Service', 'Restart')).toBe('always');
        expect(one(f, 'Service', 'KillSignal')).toBe('SIGTERM');
        expect(one(f, 'Install', 'WantedBy')).toBe('multi-user.target');
      }
    });
  });

  describe.each(files.filter((f) => f.endsWith('.timer')))('%s', (f) => {
    it('starts its shipped service on a calendar, catching up after downtime', () => {
      const target = one(f, 'Timer', 'Unit')!;
      expect(target).toBe(f.replace('@.timer', '@%i.service'));
      expect(files).toContain(template(target));
      expect(one(f, 'Timer', 'OnCalendar')).toMatch(/\d\d:\d\d:\d\d$/);
      expect(one(f, 'Timer', 'Persistent')).toBe('true');
      expect(one(f, 'Install', 'WantedBy')).toBe('timers.target');
    });
  });

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const haveAnalyze = analyze.status === 0;
  const scratch = mkdtempSync(join(tmpdir(), 'pgark-units-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(haveAnalyze ? 'systemd-analyze verify finds nothing to say about any unit or timer' : 'systemd-analyze is not installed: the parser checks above are the check', () => {
    if (!haveAnalyze) {
      console.warn('systemd-analyze not found: contrib/systemd was checked by the parser tests only');
      expect(units.size).toBe(files.length);
      return;
    }
    for (const f of files) {
      const r = spawnSync('systemd-analyze', ['verify', join(SYSTEMD, f)], { cwd: scratch, encoding: 'utf8', timeout: 60_000 });
      // Warnings ("Unknown key", "Failed to parse ... ignoring") exit 0: any line naming our files counts.
      const ours = (r.stdout + r.stderr).split('\n').filter((l) => /pgark-[a-z-]+@/.test(l));
      expect(ours, `systemd-analyze verify ${f}`).toEqual([]);
      expect(r.status, `systemd-analyze verify ${f}: ${r.stderr}`).toBe(0);
    }
    for (const f of files.filter((x) => x.endsWith('.timer'))) {
      const cal = one(f, 'Timer', 'OnCalendar')!;
      const r = spawnSync('systemd-analyze', ['calendar', cal], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, `systemd-analyze calendar '${cal}' (${f}): ${r.stderr}`).toBe(0);
    }
  });
});

describe('contrib/cron/pgark', () => {
  const lines = readFileSync(CRON, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const jobs = lines.filter((l) => !/^[A-Z_]+=/.test(l));

  it('is an /etc/cron.d file: environment lines, then jobs with five time fields and the postgres user', () => {
    expect(jobs.length).toBeGreaterThanOrEqual(5);
    for (const l of jobs) {
      const f = l.split(/\s+/);
      expect(f.length, l).toBeGreaterThanOrEqual(7);
      for (const t of f.slice(0, 5)) expect(t, l).toMatch(/^(\*|\d+(-\d+)?)(,\d+(-\d+)?)*(\/\d+)?$/);
      expect(f[5], l).toBe('postgres');
      // cron turns an unescaped % into a newline.
      expect(l.replace(/\\%/g, ''), l).not.toContain('%');
    }
  });

  it('schedules backups, expire after the backup, verify, drill and check with commands and flags pgark has', () => {
    const commands = jobs.map((l) => l.split(/\s+/).slice(6).join(' '));
    const used = commands.flatMap((c) => pgarkWords(c));
    for (const words of used) assertKnownCommand(words, 'contrib/cron/pgark');
    const names = used.map((w) => w.join(' '));
    expect(names).toEqual(expect.arrayContaining([
      'backup --type full --no-progress', 'expire', 'backup --type incr --no-progress', 'verify', 'check',
    ]));
    expect(names.some((n) => n.startsWith('drill '))).toBe(true);
    expect(commands.find((c) => c.includes('--type full'))).toMatch(/--type full --no-progress && pgark expire$/);
  });
});
