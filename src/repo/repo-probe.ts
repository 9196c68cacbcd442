/**
 * `pgark check-repo`: probe what the repository's store lets pgark do, with one probe object
 * under `<stanza>/probe/`, and report each capability separately (write, put-if-absent, stat,
 * list, read, ranged read, replace, delete) with its latency. The probe object is deleted at
 * the end whatever happened. Nothing outside `<stanza>/probe/` is written.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AlreadyExistsError, causeText } from '../common/errors.js';
import { requestCounts, type RequestKind } from '../../storage-drivers/request-stats.js';
import type { StorageDriver } from '../../storage-drivers/types.js';
import { probeKey } from './layout.js';
import type { Repository } from './repository.js';

export type ProbeName = 'write' | 'put-if-absent' | 'stat' | 'list' | 'read' | 'ranged-read' | 'replace' | 'delete' | 'marker' | 'stanza';

export interface ProbeResult {
  probe: ProbeName;
  ok: boolean;
  ms: number;
  detail: string;
}

export interface RepoProbeReport {
  location: string;
  driver: string;
  key: string;
  ok: boolean;
  results: ProbeResult[];
  requests: Record<RequestKind, number>;
}

const PROBE_SIZE = 64 * 1024;

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * probeRepository on an open repository's store. The probes talk to its driver directly, without
 * the repository's retries, so each capability is measured as the store answers it.
 */
export function probeOpenRepository(repo: Repository, stanzaCheck: () => Promise<string>, markerCheck?: () => Promise<string>): Promise<RepoProbeReport> {
  return probeRepository(repo.driver, repo.stanza, stanzaCheck, markerCheck);
}

/**
 * Run the probes in order. A probe whose prerequisite failed (nothing was written, so nothing
 * can be read) is reported as failed with that reason rather than run.
 */
export async function probeRepository(driver: StorageDriver, stanza: string, stanzaCheck: () => Promise<string>, markerCheck?: () => Promise<string>): Promise<RepoProbeReport> {
  const before = requestCounts();
  const key = probeKey(stanza, `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const body = randomBytes(PROBE_SIZE);
  const results: ProbeResult[] = [];
  const run = async (probe: ProbeName, fn: () => Promise<string>): Promise<boolean> => {
    const started = performance.now();
    let ok = true;
    let detail: string;
    try {
      detail = await fn();
    } catch (err) {
      ok = false;
      detail = causeText(err);
    }
    results.push({ probe, ok, ms: Math.round(performance.now() - started), detail });
    return ok;
  };
  const skipped = (probe: ProbeName, why: string): void => {
    results.push({ probe, ok: false, ms: 0, detail: `not tried: ${why}` });
  };

  const wrote = await run('write', async () => {
    await driver.put(key, body, { ifAbsent: true });
    return `stored ${PROBE_SIZE} bytes as '${key}'`;
  });
  try {
    if (!wrote) {
      for (const p of ['put-if-absent', 'stat', 'list', 'read', 'ranged-read', 'replace'] as const) skipped(p, 'the write failed');
    } else {
      await run('put-if-absent', async () => {
        try {
          await driver.put(key, Buffer.from('must not replace the probe'), { ifAbsent: true });
        } catch (err) {
          if (err instanceof AlreadyExistsError) return 'a second create of the same key was refused';
          throw err;
        }
        throw new Error('the store replaced an existing object on a conditional put: WAL could be overwritten (for S3-compatible stores that ignore If-None-Match, set s3-put-if-absent = head)');
      });
      await run('stat', async () => {
        const st = await driver.stat(key);
        if (!st) throw new Error('the probe object is not visible to stat');
        if (st.size !== PROBE_SIZE) throw new Error(`stat reports ${st.size} bytes, expected ${PROBE_SIZE}`);
        return `${st.size} bytes`;
      });
      await run('list', async () => {
        const prefix = key.slice(0, key.lastIndexOf('/') + 1);
        for await (const info of driver.list(prefix)) if (info.path === key) return `found under '${prefix}'`;
        throw new Error(`the probe object is not listed under '${prefix}'`);
      });
      await run('read', async () => {
        const got = await readAll(await driver.get(key));
        if (!got.equals(body)) throw new Error(`read ${got.length} bytes that differ from what was written`);
        return `${got.length} bytes, identical`;
      });
      await run('ranged-read', async () => {
        const got = await readAll(await driver.get(key, { offset: 1000, length: 5000 }));
        if (!got.equals(body.subarray(1000, 6000))) throw new Error(`a ranged read returned ${got.length} wrong bytes`);
        return 'bytes 1000-5999, identical';
      });
      await run('replace', async () => {
        const next = randomBytes(1024);
        await driver.put(key, next);
        const got = await readAll(await driver.get(key));
        if (!got.equals(next)) throw new Error('a plain put did not replace the object');
        return 'a plain put replaced the object';
      });
    }
  } finally {
    // Always try to remove the probe, also after failures.
    await run('delete', async () => {
      await driver.delete([key]);
      if (await driver.stat(key)) throw new Error('the probe object is still there after delete');
      return 'removed';
    });
  }
  if (markerCheck) await run('marker', markerCheck);
  await run('stanza', stanzaCheck);
  const after = requestCounts();
  const requests = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as RequestKind]])) as Record<RequestKind, number>;
  return { location: driver.location, driver: driver.name, key, ok: results.every((r) => r.ok), results, requests };
}

export function formatProbeReport(r: RepoProbeReport): string {
  const lines = [`repository ${r.location} (${r.driver} driver)`];
  for (const p of r.results) lines.push(`  ${p.ok ? 'OK    ' : 'FAILED'} ${p.probe.padEnd(13)} ${String(p.ms).padStart(5)} ms  ${p.detail}`);
  const req = Object.entries(r.requests).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  if (req) lines.push(`  requests: ${req}`);
  lines.push(r.ok ? 'repository OK' : 'repository FAILED');
  return lines.join('\n') + '\n';
}
