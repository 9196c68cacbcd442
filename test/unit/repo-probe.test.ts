import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import type { StorageDriver } from '../../storage-drivers/types.js';
import { formatProbeReport, probeRepository } from '../../src/repo/repo-probe.js';

describe('check-repo probes', () => {
  let root: string;
  let fs: FsDriver;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pgark-probe-'));
    fs = new FsDriver(root);
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  const stanzaOk = async (): Promise<string> => 'stanza ok';

  it('passes every probe on a working store and leaves nothing behind', async () => {
    const r = await probeRepository(fs, 'main', stanzaOk);
    expect(r.results.map((p) => [p.probe, p.ok])).toEqual([
      ['write', true], ['put-if-absent', true], ['stat', true], ['list', true], ['read', true],
      ['ranged-read', true], ['replace', true], ['delete', true], ['stanza', true],
    ]);
    expect(r.ok).toBe(true);
    expect(r.key).toMatch(/^main\/probe\/[A-Za-z0-9_.-]+-\d+-[0-9a-f]{8}$/);
    expect(await fs.stat(r.key)).toBeNull();
    const out: string[] = [];
    for await (const i of fs.list('main/')) out.push(i.path);
    expect(out).toEqual([]);
    expect(r.requests.put).toBe(3);
    expect(formatProbeReport(r)).toMatch(/repository OK\n$/);
  });

  it('reports a store that replaces objects on a conditional put', async () => {
    // A store that ignores If-None-Match: every put replaces.
    const careless: StorageDriver = Object.assign(Object.create(fs) as StorageDriver, {
      put: (path: string, body: Buffer, _o?: unknown) => fs.put(path, body),
    });
    const r = await probeRepository(careless, 'main', stanzaOk);
    const p = r.results.find((x) => x.probe === 'put-if-absent');
    expect(p?.ok).toBe(false);
    expect(p?.detail).toMatch(/replaced an existing object.*s3-put-if-absent/);
    expect(r.ok).toBe(false);
    expect(formatProbeReport(r)).toMatch(/FAILED put-if-absent[\s\S]*repository FAILED\n$/);
  });

  it('reports a store that cannot be written and skips what depends on the write', async () => {
    const readOnly: StorageDriver = Object.assign(Object.create(fs) as StorageDriver, {
      put: async () => {
        throw new Error('permission denied (EACCES)');
      },
    });
    const r = await probeRepository(readOnly, 'main', stanzaOk);
    expect(r.results[0]).toMatchObject({ probe: 'write', ok: false, detail: expect.stringContaining('EACCES') });
    expect(r.results.filter((p) => p.detail.startsWith('not tried')).map((p) => p.probe)).toEqual(['put-if-absent', 'stat', 'list', 'read', 'ranged-read', 'replace']);
    expect(r.results.find((p) => p.probe === 'delete')?.ok).toBe(true);
    expect(r.ok).toBe(false);
  });

  it('reports a stanza that cannot be read', async () => {
    const r = await probeRepository(fs, 'main', async () => {
      throw new Error("unable to read 'main/stanza.json': checksum mismatch");
    });
    expect(r.results.at(-1)).toMatchObject({ probe: 'stanza', ok: false });
    expect(r.ok).toBe(false);
  });
});
