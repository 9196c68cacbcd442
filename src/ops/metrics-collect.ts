/**
 * The background collector behind `pgark metrics` and the repository part of the agent's and
 * the receiver's endpoints. Each source (the repository; pg_stat_archiver when a connection is
 * configured) is collected every `refreshSec` on a timer, never inside a scrape: a scrape renders
 * the cached facts. An attempt is bounded by `timeoutSec`; a failed or timed-out attempt counts
 * in pgark_metrics_collect_errors_total and the previous facts stay, with their own timestamp.
 * A source never has two attempts in flight: while an abandoned one is still unwinding (a store
 * or a connection that does not answer), later refreshes count as errors instead of piling up.
 */
import { log } from '../common/log.js';
import type { Repository } from '../repo/repository.js';
import type { ArchiverFacts, RepositoryFacts } from './metrics-model.js';
import { RepositoryFactsReader } from './metrics-repo.js';
import { archiverMetricsText, collectorMetricsText, repositoryMetricsText, type MetricsSource, type SourceHealth } from './metrics-text.js';

export interface CollectorOptions {
  refreshSec: number;
  timeoutSec: number;
  /** Read pg_stat_archiver too, over this connection (dsn undefined: the libpq environment). */
  postgres?: { dsn?: string | undefined };
  /** The async further repositories (repoN-mode=async): their backlog is served, 0 when empty. */
  backlogRepos?: readonly string[];
}

class Source<T> {
  facts: T | undefined;
  readonly health: SourceHealth = { errors: 0, failing: false };
  private inFlight: Promise<unknown> | undefined;
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(private readonly name: MetricsSource, private readonly collect: (signal: AbortSignal) => Promise<T>) {}

  /** One bounded attempt; resolves when it succeeded, failed or timed out (never rejects). */
  async refresh(timeoutSec: number): Promise<void> {
    if (this.stopped) return;
    if (this.inFlight) {
      this.fail(`the previous collection is still running (over ${timeoutSec} s)`);
      return;
    }
    const ac = new AbortController();
    this.abort = ac;
    const t0 = Date.now();
    const attempt = this.collect(ac.signal);
    this.inFlight = attempt.catch(() => undefined).finally(() => (this.inFlight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutSec * 1000);
      timer.unref();
    });
    try {
      const r = await Promise.race([attempt.then((facts) => ({ facts })), timeout]);
      if (r === 'timeout') {
        ac.abort();
        this.fail(`collection took longer than ${timeoutSec} s; abandoned`);
      } else {
        this.facts = r.facts;
        this.health.okAtMs = Date.now();
        this.health.failing = false;
      }
    } catch (err) {
      this.fail((err as Error).message);
    } finally {
      clearTimeout(timer);
      this.health.lastDurationSec = (Date.now() - t0) / 1000;
    }
  }

  private fail(why: string): void {
    if (this.stopped) return; // aborted by stop(): not a failure of the source
    this.health.errors++;
    this.health.failing = true;
    log.warn(`metrics: unable to collect from the ${this.name}: ${why}${this.health.okAtMs ? ` (serving values from ${new Date(this.health.okAtMs).toISOString()})` : ''}`);
  }

  /** Abort what is in flight and wait (at most `waitMs`) for it to unwind. */
  async stop(waitMs: number): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    if (this.inFlight) await Promise.race([this.inFlight, new Promise((r) => setTimeout(r, waitMs).unref())]);
  }
}

export class MetricsCollector {
  private readonly repository: Source<RepositoryFacts>;
  private readonly postgres: Source<ArchiverFacts> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(private readonly repo: Repository, private readonly opts: CollectorOptions) {
    const reader = new RepositoryFactsReader(repo, opts.backlogRepos ?? []);
    this.repository = new Source('repository', (signal) => reader.read(signal));
    const pg = opts.postgres;
    if (pg) {
      this.postgres = new Source('postgres', async (signal) => {
        const { readArchiver } = await import('./metrics-pg.js');
        return readArchiver(pg.dsn, await repo.requireStanza(), opts.timeoutSec, signal);
      });
    }
  }

  /** Collect every source once (each bounded by timeoutSec). */
  async refresh(): Promise<void> {
    await Promise.all([this.repository.refresh(this.opts.timeoutSec), this.postgres?.refresh(this.opts.timeoutSec)]);
  }

  /** Start collecting in the background: now, then every refreshSec. `first` resolves after the first round. */
  start(): { first: Promise<void> } {
    const tick = async (): Promise<void> => {
      this.running = this.refresh();
      await this.running;
      if (!this.stopped) {
        this.timer = setTimeout(() => void tick(), this.opts.refreshSec * 1000);
        this.timer.unref();
      }
    };
    return { first: tick() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([this.repository.stop(2000), this.postgres?.stop(2000)]);
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  /** The Prometheus text of everything collected so far, ages computed at `nowMs`. */
  text(nowMs: number): string {
    const stanza = this.repo.stanza;
    return repositoryMetricsText(stanza, this.repository.facts, nowMs) +
      archiverMetricsText(stanza, this.postgres?.facts, nowMs) +
      collectorMetricsText(stanza, { repository: this.repository.health, ...(this.postgres ? { postgres: this.postgres.health } : {}) });
  }
}

/**
 * Repository metrics for the agent's and the receiver's endpoints: collected in the background
 * every `refreshSec` (default 60), never on the scrape or the archiving path.
 */
export function startRepositoryMetrics(repo: Repository, refreshSec = 60): MetricsCollector {
  const c = new MetricsCollector(repo, { refreshSec, timeoutSec: Math.min(60, refreshSec) });
  c.start();
  return c;
}
