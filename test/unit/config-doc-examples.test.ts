// Every pgark config file shown in README.md, docs/*.md and contrib/ parses with the CLI's parser,
// and its values pass the type checks (config/setting-check.ts) as the CLI resolves them.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigFile } from '../../src/config/config-file.js';
import { resolveSettings } from '../../src/config/resolve.js';

const root = join(import.meta.dirname, '..', '..');
const SYSTEMD_SECTIONS = new Set(['Unit', 'Service', 'Timer', 'Install', 'Socket', 'Path', 'Mount']);

/** The ```ini blocks of a markdown file whose first setting line is a non-systemd [section]. */
function configBlocks(path: string): { where: string; text: string }[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: { where: string; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ini') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    const body = lines.slice(start, end);
    i = end;
    const first = body.map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
    const section = first && /^\[([^\]]+)\]/.exec(first);
    if (section && !SYSTEMD_SECTIONS.has(section[1]!)) out.push({ where: `${path}:${start}`, text: body.join('\n') });
  }
  return out;
}

/** The example config in contrib/cron/pgark's header comment (lines '#   ...' after 'pgark.conf ... e.g.'). */
function cronExample(): { where: string; text: string } {
  const path = join(root, 'contrib', 'cron', 'pgark');
  const lines = readFileSync(path, 'utf8').split('\n');
  const at = lines.findIndex((l) => /pgark\.conf.*e\.g\.$/.test(l));
  expect(at).toBeGreaterThan(0);
  const body: string[] = [];
  for (let i = at + 1; i < lines.length && lines[i]!.startsWith('#   '); i++) body.push(lines[i]!.slice(4));
  return { where: `${path}:${at + 2}`, text: body.join('\n') };
}

const tmp = mkdtempSync(join(tmpdir(), 'pgark-doc-examples-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const docs = [join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f))];
const examples = [...docs.flatMap(configBlocks), cronExample()];

describe('config examples in the documentation parse', () => {
  it('finds the examples (README, docs/OPERATIONS.md, contrib/cron/pgark)', () => {
    expect(examples.filter((e) => e.where.includes('README.md')).length).toBeGreaterThanOrEqual(1);
    expect(examples.filter((e) => e.where.includes('OPERATIONS.md')).length).toBeGreaterThanOrEqual(1);
  });
  it.each(examples.map((e) => [e.where.slice(root.length + 1), e.text] as const))('%s', (where, text) => {
    const sections = parseConfigFile(text, where);
    expect(sections.size).toBeGreaterThan(0);
    for (const values of sections.values()) for (const v of values.values()) expect(v).not.toMatch(/[ \t][#;(]/);
    // Resolved as the CLI does, for [global] alone and for each stanza section.
    const path = join(tmp, `${where.replace(/[^A-Za-z0-9]+/g, '_')}.conf`);
    writeFileSync(path, text);
    for (const stanza of ['main', ...[...sections.keys()].filter((s) => s !== 'global')]) {
      expect(() => resolveSettings({ config: path, stanza }, {})).not.toThrow();
    }
  });
  it('the README example gives the values it says', () => {
    const readme = examples.find((e) => e.where.includes('README.md') && e.text.includes('[global]'))!;
    const s = parseConfigFile(readme.text, 'README.md');
    expect(s.get('global')?.get('repo')).toBe('/var/lib/pgark');
    expect(s.get('main')?.get('push-ahead')).toBe('32');
  });
});
