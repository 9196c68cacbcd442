/**
 * Drill reports in the repository: `<stanza>/drill/<id>.json`, written once (put-if-absent),
 * listed newest first. Used by `pgark drill`, `pgark drills`, `pgark info` and the metrics.
 */
import { drillIdFor, drillKey, drillPrefix } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { parseDrillReport, type DrillReport } from './drill-report.js';

/** A drill id for `start` not yet used in the repository (the next second when it is). */
export async function unusedDrillId(repo: Repository, start: Date): Promise<string> {
  let t = start.getTime();
  for (let i = 0; i < 60; i++, t += 1000) {
    const id = drillIdFor(new Date(t));
    if (!(await repo.stat(drillKey(repo.stanza, id)))) return id;
  }
  return drillIdFor(new Date(t));
}

export async function storeDrillReport(repo: Repository, r: DrillReport): Promise<string> {
  const key = drillKey(repo.stanza, r.id);
  await repo.putJson(key, r, true);
  return key;
}

/** Ids of the stored reports, newest first. */
export async function listDrillIds(repo: Repository): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of repo.list(drillPrefix(repo.stanza))) {
    const m = /\/drill\/(\d{8}-\d{6}D)\.json$/.exec(o.path);
    if (m) ids.push(m[1]!);
  }
  return ids.sort().reverse();
}

export async function readDrillReport(repo: Repository, id: string): Promise<DrillReport> {
  const key = drillKey(repo.stanza, id);
  return parseDrillReport(await repo.getJson(key), key);
}

/** The newest `limit` reports, newest first. */
export async function listDrillReports(repo: Repository, limit = Number.POSITIVE_INFINITY): Promise<DrillReport[]> {
  const ids = (await listDrillIds(repo)).slice(0, limit);
  const out: DrillReport[] = [];
  for (const id of ids) out.push(await readDrillReport(repo, id));
  return out;
}

/** The newest report, or undefined when no drill ran. */
export async function latestDrillReport(repo: Repository): Promise<DrillReport | undefined> {
  return (await listDrillReports(repo, 1))[0];
}
