/**
 * The metrics collector on a real fs repository behind a driver that can be made to fail or
 * hang: three listings and no re-reads per refresh, failures and timeouts counted while the
 * previous values stay with their timestamp, never two attempts in flight.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import type { GetOptions, ObjectInfo, Op, PutOptions, StorageDriver } from '../../storage-drivers/types.js';
import { StorageError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { drillKey, walKey } from '../../src/repo/layout.js';
import { MetricsCollector } from '../../src/ops/metrics-collect.js';

type Mode = 'ok' | 'fail' | 'hang' | 'stuck';

/** Delegates to a real driver; list() can fail, hang until aborted, or hang until released. */
class ControlledDriver implements StorageDriver {
  mode: Mode = 'ok';
  lists = 0;
  gets = 0;
  private release: (() => void) | undefined;
  readonly name: string;
  readonly features: StorageDriver['features'];
  readonly location: string;
  constructor(private readonly inner: StorageDriver) {
    this.name = inner.name;
    this.features = inner.features;
    this.location = inner.location;
  }
  unstick(): void {
    this.release?.();
  }
  stat(path: string, o?: Op) {
    return this.inner.stat(path, o);
  }
  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    this.lists++;
    if (this.mode === 'fail') throw new StorageError('test', 'unable to list: injected failure');
    if (this.mode === 'hang') {
      await new Promise<void>((_resolve, reject) => o.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    }
    if (this.mode === 'stuck') await new Promise<void>((resolve) => (this.release = resolve));
    yield* this.inner.list(prefix, o);
  }
  get(path: string, o?: GetOptions): Promise<Readable> {
    this.gets++;
    return this.inner.get(path, o);
  }
  put(path: string, body: Readable | Buffer, o?: PutOptions) {
    return this.inner.put(path, body, o);
  }
  delete(paths: string[], o?: Op) {
    return this.inner.delete(paths, o);
  }
  close() {
    return this.inner.close();
  }
}

let dir: string;
let driver: ControlledDriver;
let repo: Repository;
const SEG = 1024 * 1024;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-metrics-'));
  driver = new ControlledDriver(await openDriver(join(dir, 'repo')));
  repo = new Repository(driver, 'main', { attempts: 1, budgetMs: 0 });
  await repo.ensureStanza({ systemIdentifier: '7000000000000000001', pgVersion: 15, walSegmentSize: SEG }, 'none', 'test');
  await repo.putObject(walKey('main', '000000010000000000000003'), () => Readable.from([Buffer.alloc(16)]), { codec: 'none' });
  await repo.putJson(drillKey('main', '20261123-101500D'), { id: '20261123-101500D', result: 'passed', finishedAt: '2026-11-23T10:16:00.000Z', phases: { restoreSec: 1 }, rtoSec: 3, rpo: { seconds: 0 } });
});
afterEach(async () => {
  driver.unstick();
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

const value = (text: string, sample: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};
const REPO = '{stanza="main",source="repository"}';

describe('MetricsCollector', () => {
  it('one listing each of catalog, WAL and drills per refresh; reports are read once', async () => {
    const c = new MetricsCollector(repo, { refreshSec: 3600, timeoutSec: 5 });
    await c.refresh();
    const text = c.text(Date.now());
    expect(value(text, 'pgark_wal_segments{stanza="main"}')).toBe(1);
    expect(value(text, 'pgark_wal_newest_segment_end_lsn_bytes{stanza="main"}')).toBe(4 * SEG);
    expect(value(text, 'pgark_drills{stanza="main"}')).toBe(1);
    expect(value(text, 'pgark_drill_last_rto_seconds{stanza="main"}')).toBe(3);
    expect(value(text, 'pgark_backups{stanza="main"}')).toBe(0);
    expect(value(text, `pgark_metrics_up${REPO}`)).toBe(1);
    expect(value(text, `pgark_metrics_collect_errors_total${REPO}`)).toBe(0);
    expect(text).not.toMatch(/source="postgres"/);
    driver.lists = 0;
    driver.gets = 0;
    await c.refresh();
    expect(driver.lists).toBe(3);
    expect(driver.gets).toBe(0);
    // A new report: read once, then cached again.
    await repo.putJson(drillKey('main', '20261124-101500D'), { id: '20261124-101500D', result: 'failed', failure: 'x' });
    driver.gets = 0;
    await c.refresh();
    expect(driver.gets).toBe(1);
    const t = c.text(Date.now());
    expect(value(t, 'pgark_drills{stanza="main"}')).toBe(2);
    expect(value(t, 'pgark_drill_last_passed{stanza="main"}')).toBe(0);
    expect(value(t, 'pgark_drill_last_passed_timestamp_seconds{stanza="main"}')).toBe(Date.parse('2026-11-23T10:16:00.000Z') / 1000);
  });

  it('a failure or a timeout is counted; the previous values stay with their timestamp', async () => {
    const c = new MetricsCollector(repo, { refreshSec: 3600, timeoutSec: 0.3 });
    await c.refresh();
    const okAt = value(c.text(Date.now()), `pgark_metrics_last_collect_timestamp_seconds${REPO}`);
    expect(okAt).toBeGreaterThan(0);

    driver.mode = 'fail';
    await c.refresh();
    let t = c.text(Date.now());
    expect(value(t, `pgark_metrics_collect_errors_total${REPO}`)).toBe(1);
    expect(value(t, `pgark_metrics_up${REPO}`)).toBe(0);
    expect(value(t, `pgark_metrics_last_collect_timestamp_seconds${REPO}`)).toBe(okAt);
    expect(value(t, 'pgark_wal_segments{stanza="main"}')).toBe(1);

    driver.mode = 'hang'; // unwinds when the attempt is abandoned
    await c.refresh();
    t = c.text(Date.now());
    expect(value(t, `pgark_metrics_collect_errors_total${REPO}`)).toBe(2);
    expect(value(t, 'pgark_drills{stanza="main"}')).toBe(1);
    expect(value(t, `pgark_metrics_collect_duration_seconds${REPO}`)).toBeGreaterThanOrEqual(0.3);

    driver.mode = 'ok';
    await repo.putObject(walKey('main', '000000010000000000000004'), () => Readable.from([Buffer.alloc(16)]), { codec: 'none' });
    await c.refresh();
    t = c.text(Date.now());
    expect(value(t, `pgark_metrics_up${REPO}`)).toBe(1);
    expect(value(t, 'pgark_wal_segments{stanza="main"}')).toBe(2);
    expect(value(t, `pgark_metrics_last_collect_timestamp_seconds${REPO}`)).toBeGreaterThanOrEqual(okAt!);
    expect(value(t, `pgark_metrics_collect_errors_total${REPO}`)).toBe(2);
  });

  it('an attempt that ignores the abort is never doubled: later refreshes count as errors until it ends', async () => {
    const c = new MetricsCollector(repo, { refreshSec: 3600, timeoutSec: 0.2 });
    driver.mode = 'stuck';
    await c.refresh(); // times out, still in flight
    const lists = driver.lists;
    await c.refresh(); // refused: the previous one is still running
    expect(driver.lists).toBe(lists);
    let t = c.text(Date.now());
    expect(value(t, `pgark_metrics_collect_errors_total${REPO}`)).toBe(2);
    expect(value(t, `pgark_metrics_up${REPO}`)).toBe(0);
    expect(t).not.toMatch(/^pgark_wal_segments/m);
    driver.mode = 'ok';
    driver.unstick();
    await new Promise((r) => setTimeout(r, 50));
    await c.refresh();
    t = c.text(Date.now());
    expect(value(t, `pgark_metrics_up${REPO}`)).toBe(1);
    expect(value(t, 'pgark_wal_segments{stanza="main"}')).toBe(1);
  });

  it('start() collects at once and then on its timer; stop() ends it', async () => {
    const c = new MetricsCollector(repo, { refreshSec: 0.1, timeoutSec: 1 });
    await c.start().first;
    const first = driver.lists;
    expect(first).toBe(3);
    const deadline = Date.now() + 10_000;
    while (driver.lists < first + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(driver.lists).toBeGreaterThanOrEqual(first + 3);
    await c.stop();
    const after = driver.lists;
    await new Promise((r) => setTimeout(r, 300));
    expect(driver.lists).toBe(after);
  });
});
