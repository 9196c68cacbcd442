/**
 * `pgark setup`: configure a cluster for pgark with ALTER SYSTEM (plan in setup-plan.ts).
 *
 * Order: connect; check --pgdata is this server; check the stanza (if it exists) belongs to this
 * cluster; build archive_command (and restore_command for a standby) for this installation,
 * repository and stanza; plan; refuse before writing anything when a value pgark did not write
 * would be replaced without --force, when ALTER SYSTEM cannot win, or when --restart cannot
 * work; then create the repository (its marker, as `pgark repo create`: archive_command would
 * refuse an unmarked location), write, reload and/or restart, and read the settings back.
 */
import { realpath } from 'node:fs/promises';
import type { Client } from 'pg';
import { ConfigError } from '../common/errors.js';
import { selfCommand } from '../common/self-command.js';
import type { CommandSettings } from '../config/settings-transport.js';
import { connectPg } from '../pg/connect.js';
import { readSystemIdentifier } from '../pg/control-file.js';
import { buildRestoreCommand } from '../common/self-command.js';
import { assertSameCluster } from '../repo/stanza-meta.js';
import type { Repository } from '../repo/repository.js';
import { createRepository, readRepoMarker } from '../repo/repo-marker.js';
import { buildArchiveCommand } from './archive-command.js';
import { prepareRestart, restartServer, type RestartPlan } from './pg-restart.js';
import { boundStatements, readServerSettings, serverFacts, type ServerFacts } from './pg-settings.js';
import { alterSystemSql, describeReplacement, planSetup, type PlannedSetting, type SetupPlan, type SetupWanted } from './setup-plan.js';

export const SETUP_SETTING_NAMES = ['archive_mode', 'archive_command', 'archive_library', 'wal_level', 'max_wal_senders', 'archive_timeout', 'restore_command'] as const;

export interface SetupOptions {
  /**
   * What archive_command / restore_command carry (config/settings-transport.ts commandSettings):
   * like restore, the repository, stanza, config file and storage settings given by flag or
   * environment travel with the commands.
   */
  commands: CommandSettings;
  /** --pgdata: when given, it must be the data directory of the server connected to. */
  pgdata?: string | undefined;
  dsn?: string | undefined;
  dryRun: boolean;
  reload: boolean;
  restart: boolean;
  /** Set archive_timeout (seconds). */
  archiveTimeoutSec?: number | undefined;
  /** Set restore_command even when the server is not in recovery now. */
  standby: boolean;
  force: boolean;
  /** Server log file for the restart (pg_ctl -l). */
  logFile?: string | undefined;
}

export interface SetupOutcome {
  server: Pick<ServerFacts, 'pgVersion' | 'dataDirectory' | 'inRecovery' | 'systemIdentifier'>;
  repo: string;
  stanza: string;
  dryRun: boolean;
  /** The plan as made before any change. */
  plan: SetupPlan;
  /** Settings written with ALTER SYSTEM. */
  written: PlannedSetting[];
  reloaded: boolean;
  restarted: boolean;
  /** Settings that still wait for a reload or restart when setup ends. */
  pending: PlannedSetting[];
  /** The repository marker: there already, written by this run, or (dry run) would be written. */
  repository: 'exists' | 'created' | 'would-create';
  notes: string[];
}

/** How long setup waits for a reload to reach its own session (pg_reload_conf is asynchronous). */
const RELOAD_WAIT_MS = 10_000;

async function samePath(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([realpath(a).catch(() => a), realpath(b).catch(() => b)]);
  return x === y;
}

async function checkPgdata(pgdata: string, facts: ServerFacts): Promise<void> {
  let id: string;
  try {
    id = await readSystemIdentifier(pgdata);
  } catch (err) {
    throw new ConfigError(`unable to read the cluster in --pgdata '${pgdata}': ${(err as Error).message}`);
  }
  if (id !== facts.systemIdentifier || !(await samePath(pgdata, facts.dataDirectory))) {
    throw new ConfigError(
      `--pgdata '${pgdata}' (system identifier ${id}) is not the data directory of the server you connected to ` +
      `('${facts.dataDirectory}', system identifier ${facts.systemIdentifier}): check --dsn / PGHOST / PGPORT`,
    );
  }
}

async function checkStanza(repo: Repository, facts: ServerFacts, notes: string[]): Promise<void> {
  const meta = await repo.readStanza();
  if (!meta) {
    notes.push(`stanza '${repo.stanza}' does not exist yet in the repository: the first wal-push or backup creates it`);
    return;
  }
  assertSameCluster(meta, { systemIdentifier: facts.systemIdentifier, pgVersion: facts.pgVersion, walSegmentSize: facts.walSegmentSize }, 'the server you are setting up');
}

function wantedSettings(facts: ServerFacts, o: SetupOptions): SetupWanted {
  const common = { ...selfCommand(), ...o.commands };
  return {
    repo: o.commands.repo,
    stanza: o.commands.stanza,
    archiveCommand: buildArchiveCommand(common),
    ...(facts.inRecovery || o.standby ? { restoreCommand: buildRestoreCommand(common) } : {}),
    ...(o.archiveTimeoutSec !== undefined ? { archiveTimeoutSec: o.archiveTimeoutSec } : {}),
  };
}

async function planNow(c: Client, wanted: SetupWanted): Promise<{ plan: SetupPlan; fileSettingsRead: boolean }> {
  const { rows, fileSettingsRead } = await readServerSettings(c, SETUP_SETTING_NAMES);
  return { plan: planSetup(rows, wanted), fileSettingsRead };
}

function refusals(plan: SetupPlan, force: boolean): string[] {
  const out: string[] = [];
  for (const b of plan.blocked) out.push(`${b.name} = '${b.running}' ${b.note ?? ''}`.trim());
  if (!force) for (const f of plan.foreign) out.push(`refusing: ${describeReplacement(f)}; pass --force to replace it`);
  return out;
}

export async function runSetup(repo: Repository, o: SetupOptions): Promise<SetupOutcome> {
  const notes: string[] = [];
  let c = await connectPg(o.dsn, 'pgark setup');
  try {
    await boundStatements(c);
    const facts = await serverFacts(c);
    if (o.pgdata) await checkPgdata(o.pgdata, facts);
    await checkStanza(repo, facts, notes);
    const wanted = wantedSettings(facts, o);
    const { plan, fileSettingsRead } = await planNow(c, wanted);
    if (!fileSettingsRead) {
      notes.push('pg_file_settings is not readable by this user: values written earlier but not applied yet are not seen');
    }
    const refused = refusals(plan, o.force);
    if (refused.length > 0) throw new ConfigError(`nothing was changed:\n  ${refused.join('\n  ')}`);
    let restart: RestartPlan | undefined;
    if (o.restart && plan.restartNeeded) {
      restart = await prepareRestart(facts.dataDirectory, facts.pgVersion, facts.loggingCollector, o.logFile);
    }
    const outcome: SetupOutcome = {
      server: { pgVersion: facts.pgVersion, dataDirectory: facts.dataDirectory, inRecovery: facts.inRecovery, systemIdentifier: facts.systemIdentifier },
      repo: wanted.repo, stanza: wanted.stanza, dryRun: o.dryRun, plan, written: [], reloaded: false, restarted: false,
      pending: plan.items.filter((i) => i.action === 'set' || i.action === 'pending'), repository: 'exists', notes,
    };
    if (o.dryRun) {
      if (!(await readRepoMarker(repo))) outcome.repository = 'would-create';
      return outcome;
    }
    if ((await createRepository(repo)).created) outcome.repository = 'created';

    for (const w of plan.writes) {
      await c.query(alterSystemSql(w));
      outcome.written.push(w);
    }
    if ((o.reload || o.restart) && (plan.reloadNeeded || plan.restartNeeded)) {
      await c.query('SELECT pg_reload_conf()');
      outcome.reloaded = true;
    }
    if (restart) {
      await c.end().catch(() => undefined);
      await restartServer(restart);
      outcome.restarted = true;
      c = await connectPg(o.dsn, 'pgark setup');
      await boundStatements(c);
    }
    // Read back what the server runs now. A reload reaches this session asynchronously.
    const deadline = Date.now() + (outcome.reloaded && !outcome.restarted ? RELOAD_WAIT_MS : 0);
    for (;;) {
      const now = (await planNow(c, wanted)).plan;
      outcome.pending = now.items.filter((i) => i.action === 'set' || i.action === 'pending');
      const waitingForReload = outcome.reloaded && outcome.pending.some((i) => i.apply === 'reload');
      if (!waitingForReload || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    if (outcome.pending.some((i) => i.action === 'set')) {
      notes.push(`not in effect after setup: ${outcome.pending.filter((i) => i.action === 'set').map((i) => i.name).join(', ')} (another configuration source overrides postgresql.auto.conf?)`);
    }
    return outcome;
  } finally {
    await c.end().catch(() => undefined);
  }
}
