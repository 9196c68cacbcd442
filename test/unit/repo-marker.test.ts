/**
 * The repository marker: its content (pure), and on a local directory the refusal before any
 * write, creation, legacy adoption and the re-check of long-running writers.
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode, IntegrityError, NotARepositoryError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { createRepository, encodeRepoMarker, parseRepoMarker, REPO_MARKER_KEY, requireRepoMarker } from '../../src/repo/repo-marker.js';
import { openDriver } from '../../storage-drivers/registry.js';

const work = mkdtempSync(join(tmpdir(), 'pgark-marker-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const open = async (dir: string, stanza = 'main') => new Repository(await openDriver(dir), stanza, { attempts: 1, budgetMs: 0 });

describe('marker content', () => {
  it('round-trips', () => {
    const raw = encodeRepoMarker(new Date('2026-12-06T21:00:00Z'), 'pgark 9.9.9');
    expect(raw.toString()).toBe('{"format":1,"kind":"pgark-repository","createdAt":"2026-12-06T21:00:00.000Z","createdBy":"pgark 9.9.9"}\n');
    expect(parseRepoMarker(raw, 'x')).toEqual({ format: 1, kind: 'pgark-repository', createdAt: '2026-12-06T21:00:00.000Z', createdBy: 'pgark 9.9.9' });
  });
  it.each([
    ['not JSON', 'pgark', /invalid repository marker/],
    ['another kind', '{"format":1,"kind":"stanza","createdAt":"","createdBy":""}', /expected kind "pgark-repository"/],
    ['missing fields', '{"format":1,"kind":"pgark-repository"}', /invalid repository marker/],
    ['a newer format', '{"format":2,"kind":"pgark-repository","createdAt":"","createdBy":""}', /repository format 2 is not supported/],
    ['null', 'null', /invalid repository marker/],
  ])('refuses %s', (_n, text, message) => {
    expect(() => parseRepoMarker(Buffer.from(text), 'r/.pgark-repository')).toThrow(IntegrityError);
    expect(() => parseRepoMarker(Buffer.from(text), 'r/.pgark-repository')).toThrow(message);
  });
});

describe('on a local directory', () => {
  it('a missing path and an empty directory are refused (exit 9) and nothing is created', async () => {
    const missing = join(work, 'no', 'such', 'repo');
    const empty = join(work, 'empty');
    mkdirSync(empty);
    for (const dir of [missing, empty]) {
      const err = await requireRepoMarker(await open(dir)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotARepositoryError);
      expect((err as NotARepositoryError).exitCode).toBe(ExitCode.NOT_A_REPOSITORY);
      expect((err as Error).message).toContain(`no pgark repository at '${dir}'`);
      expect((err as Error).message).toContain(`pgark repo create --repo ${dir}`);
    }
    expect(existsSync(join(work, 'no'))).toBe(false);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('createRepository is idempotent and the result passes the check', async () => {
    const dir = join(work, 'made');
    const first = await createRepository(await open(dir));
    expect(first).toMatchObject({ location: dir, created: true, marker: { format: 1, kind: 'pgark-repository' } });
    const second = await createRepository(await open(dir));
    expect(second).toEqual({ ...first, created: false });
    expect(await requireRepoMarker(await open(dir))).toBe('marked');
  });

  it('a repository with the stanza but no marker is adopted; another stanza there is refused', async () => {
    const dir = join(work, 'legacy');
    await createRepository(await open(dir));
    await (await open(dir)).putJson('main/stanza.json', { format: 1, stanza: 'main', systemIdentifier: '7', pgVersion: 15, walSegmentSize: 16777216, codec: 'lz4', createdAt: '', createdBy: '' }, true);
    unlinkSync(join(dir, REPO_MARKER_KEY));
    await expect(requireRepoMarker(await open(dir, 'other'))).rejects.toBeInstanceOf(NotARepositoryError);
    expect(existsSync(join(dir, REPO_MARKER_KEY))).toBe(false);
    const repo = await open(dir);
    expect(await requireRepoMarker(repo)).toBe('adopted');
    expect(existsSync(join(dir, REPO_MARKER_KEY))).toBe(true);
    expect((await repo.readStanza())?.systemIdentifier).toBe('7'); // read together with the marker
  });

  it('a long-running writer whose marker disappears (an unmount) writes nothing more', async () => {
    const dir = join(work, 'unmounted');
    const repo = await open(dir);
    await createRepository(repo);
    repo.guardMarker(REPO_MARKER_KEY, 0);
    await repo.putSmallObject('main/a', Buffer.from('a'));
    unlinkSync(join(dir, REPO_MARKER_KEY));
    await expect(repo.putSmallObject('main/b', Buffer.from('b'))).rejects.toThrow(/repository marker '\.pgark-repository' is no longer in/);
    await expect(repo.putObject('main/c', () => Readable.from([Buffer.from('c')]), { codec: 'none' })).rejects.toBeInstanceOf(NotARepositoryError);
    expect(readdirSync(join(dir, 'main'))).toEqual(['a']);
  });
});
