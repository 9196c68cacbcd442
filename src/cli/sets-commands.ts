/**
 * CLI wiring of `pgark sets ...` (logical replication sets). Every command
 * connects to the source with --source DSN or the libpq environment (no password in a DSN).
 * Implementations load only when a command runs.
 */
import { Command } from 'commander';
import { log } from '../common/log.js';
import type { SetMeta, Subscriber } from '../logical/set-meta.js';
import { abortOnSignals, printJson, settingsFrom } from './context.js';
import { intOption, repeatable } from './options.js';
import { deprecatedAlias } from './deprecated-flags.js';
import { withFormat } from '../json/format.js';
import { ExitWith } from './exit.js';

export const SOURCE_HELP = 'source database connection string (default: the libpq environment; no password: use PGPASSWORD/PGPASSFILE)';
const w = (s: string) => process.stdout.write(s + '\n');

function describeTables(m: SetMeta): string {
  if (m.scope.kind === 'all-tables') return 'all tables';
  if (m.scope.kind === 'schema') return `tables in schema ${m.scope.schemas.join(', ')}`;
  return m.tables.map((t) => `${t.schema}.${t.table}${t.columns ? ` (${t.columns.join(', ')})` : ''}${t.rowFilter !== undefined ? ` WHERE ${t.rowFilter}` : ''}`).join('; ');
}

function printSet(m: SetMeta): void {
  w(`set ${m.set} (publication pgark_${m.set}): ${describeTables(m)}`);
  w(`  operations: ${m.operations.join(', ')}`);
  if (m.subscribers.length === 0) w('  subscribers: none');
  for (const s of m.subscribers) {
    w(`  subscriber ${s.name}: ${s.mode}, slot ${s.slot}, target ${s.target}${s.pendingTables?.length ? `, pending tables ${s.pendingTables.join(', ')}` : ''}`);
  }
}

/** Redacted copy of a subscriber for output (targets never hold a password, but be safe). */
async function redactSubs(m: SetMeta): Promise<SetMeta> {
  const { redactDsn } = await import('../pg/connect.js');
  return { ...m, subscribers: m.subscribers.map((s) => ({ ...s, target: redactDsn(s.target) })) };
}

export function registerSetsCommands(program: Command): void {
  const sets = program
    .command('sets')
    .summary('logical replication sets: publications, subscribers, status')
    .description(
      'A replication set is a publication pgark_<set> on the source database; its definition and its ' +
      'subscribers are kept as JSON in the publication\'s comment (COMMENT ON PUBLICATION), so they live ' +
      'in the source database and go with the publication. Subscribers use slots pgark_<set>_<subscriber>.',
    );

  sets
    .command('create <set>')
    .summary('create a set (a validated publication)')
    .description(
      'Create a set: validates the source (wal_level = logical, a free replication slot and WAL sender, ' +
      'the tables exist, a primary key or replica identity on every table when updates or deletes are ' +
      'replicated, row filters and column lists on PostgreSQL 15+ that fit the replica identity), then ' +
      'creates the publication and its metadata in one transaction.',
    )
    .option('--source <dsn>', SOURCE_HELP)
    .option('--tables <list>', 'tables to replicate, comma-separated ([schema.]table)')
    .option('--schema <name>', 'replicate every table in this schema (comma-separated for several)')
    .option('--all-tables', 'replicate every table in the database')
    .option('--operations <list>', 'operations to replicate: insert,update,delete,truncate (default all)')
    .option('--row-filter <table:expr>', "row filter for a listed table, e.g. 'pgbench_accounts:bid = 1' (repeatable)", repeatable)
    .option('--columns <table:c1,c2>', "column list for a listed table, e.g. 'pgbench_accounts:aid,bid' (repeatable)", repeatable)
    .option('--json', 'print the set as JSON')
    .action(async (set: string, opts: { source?: string; tables?: string; schema?: string; allTables?: boolean; operations?: string; rowFilter?: string[]; columns?: string[]; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { createSet } = await import('../logical/sets-admin.js');
      const meta = await createSet({
        set, sourceDsn: opts.source, tables: opts.tables, schema: opts.schema, allTables: opts.allTables,
        operations: opts.operations, rowFilters: opts.rowFilter ?? [], columns: opts.columns ?? [],
      });
      if (opts.json) printJson(withFormat('sets-create', meta));
      else {
        w(`created set ${set}`);
        printSet(meta);
      }
    });

  sets
    .command('add-table <set> <table>')
    .summary('add a table to a set; subscribers copy it')
    .description(
      'Add a table to a set made with --tables (same validation as create). Native subscribers are ' +
      'refreshed on their targets (ALTER SUBSCRIPTION ... REFRESH PUBLICATION, copy_data = true: the table ' +
      'arrives with its data; it must exist on each target, or is created there with --sync-structure, which ' +
      'subscribers made with --sync-structure imply); agent subscribers copy it when their apply ' +
      'worker runs (pending tables).',
    )
    .option('--source <dsn>', SOURCE_HELP)
    .option('--row-filter <expr>', 'row filter (PostgreSQL 15+)')
    .option('--columns <c1,c2>', 'column list (PostgreSQL 15+)')
    .option('--sync-structure', 'create the table on targets that lack it (pg_dump --schema-only); implied for subscribers made with --sync-structure')
    .option('--json', 'print the result as JSON')
    .action(async (set: string, table: string, opts: { source?: string; rowFilter?: string; columns?: string; syncStructure?: boolean; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { addTable } = await import('../logical/sets-admin.js');
      const r = await addTable({ set, sourceDsn: opts.source, table, rowFilter: opts.rowFilter, columns: opts.columns, ...(opts.syncStructure ? { syncStructure: true } : {}) });
      printTableChange(r, opts.json);
    });

  sets
    .command('remove-table <set> <table>')
    .summary('remove a table from a set')
    .description('Remove a table from a set made with --tables; native subscribers are refreshed on their targets.')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (set: string, table: string, opts: { source?: string; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { removeTable } = await import('../logical/sets-admin.js');
      printTableChange(await removeTable({ set, sourceDsn: opts.source, table }), opts.json);
    });

  sets
    .command('list')
    .summary('list sets, tables, filters and subscribers')
    .description('List the sets on the source: scope, tables with row filters and column lists, operations, subscribers.')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { source?: string; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { withSource } = await import('../logical/sets-admin.js');
      const { listSets } = await import('../logical/set-catalog.js');
      const all = await Promise.all((await withSource(opts.source, (c) => listSets(c))).map(redactSubs));
      if (opts.json) printJson((await import('../json/sets-json.js')).setsListJson(all));
      else if (all.length === 0) w('no replication sets on the source (pgark sets create makes one)');
      else all.forEach(printSet);
    });

  sets
    .command('drop <set>')
    .summary('drop a set or one subscriber (subscription, slot, publication)')
    .description(
      'Drop a set, or with --subscriber one subscriber, in a safe order: native subscriptions are disabled, ' +
      'detached from their slot and dropped on the target; agent subscribers\' positions are removed from the ' +
      'target; then each slot is dropped on the source (an active slot is refused, naming its pid, unless ' +
      '--force terminates its holder), the metadata updated, and last the publication dropped.',
    )
    .option('--source <dsn>', SOURCE_HELP)
    .option('--subscriber <name>', 'drop only this subscriber (the set stays)')
    .option('--force', 'terminate a process holding a slot; go on when a native target is unreachable')
    .option('--json', 'print the result as JSON')
    .action(async (set: string, opts: { source?: string; subscriber?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { dropSet } = await import('../logical/sets-admin.js');
      const r = await dropSet({ set, sourceDsn: opts.source, subscriber: opts.subscriber, force: !!opts.force });
      if (opts.json) printJson(withFormat('sets-drop', r));
      else {
        for (const s of r.subscribers) {
          w(`dropped subscriber ${s.name} (${s.mode})${s.subscriptionDropped ? ', its subscription on the target' : ''}${s.slotDropped ? ' and its slot' : ''}`);
        }
        for (const n of r.notes) w(`note: ${n}`);
        if (r.publicationDropped) w(`dropped set ${set} (publication pgark_${set})`);
      }
    });

  sets
    .command('status [set]')
    .summary('health of sets and subscribers (exit 0/1/2)')
    .description(
      'Per set and subscriber: the slot (exists, active, pid), lag in bytes and seconds, WAL the slot retains, ' +
      'table sync states and the last error. Exit code 0 healthy, 1 warning (an inactive slot retaining more ' +
      'than --retain-warn, subscription errors), 2 unhealthy (slot missing or lost, subscription missing or ' +
      'disabled, apply worker failing, target unreachable).',
    )
    .option('--source <dsn>', SOURCE_HELP)
    .option('--retain-warn <size>', 'warn when an inactive slot retains more WAL than this', '1GB')
    .option('--json', 'print as JSON')
    .action(async (set: string | undefined, opts: { source?: string; retainWarn: string; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { parseSize } = await import('../logical/set-validate.js');
      const retainWarnBytes = parseSize(opts.retainWarn, '--retain-warn');
      const { setsStatus, formatStatus } = await import('../logical/sets-status.js');
      const r = await setsStatus({ sourceDsn: opts.source, set, retainWarnBytes });
      if (opts.json) printJson(withFormat('sets-status', r));
      else formatStatus(r).forEach((l) => w(l));
      if (r.exitCode !== 0) throw new ExitWith(r.exitCode);
    });

  const subscribe = sets
    .command('subscribe <set>')
    .summary('subscribe a target (native subscription or pgark agent)')
    .description(
      'Subscribe a target database to a set. native: a logical slot (pgoutput) on the source and a ' +
      'subscription on the target that uses it (the target server connects to the source with --source or ' +
      'the libpq environment turned into a connection string; its password must come from the target ' +
      'server\'s .pgpass). agent: pgark applies the changes itself (pgark sets apply), after an initial copy ' +
      'from the slot\'s exported snapshot.',
    )
    .requiredOption('--target <dsn>', 'target database connection string (no password)')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--subscriber <name>', 'subscriber name (lower-case letters, digits, _; default: the target database\'s name for native, agent for agent)')
    .option('--mode <mode>', 'native or agent', 'native')
    .option('--sync-structure', 'create the set\'s table definitions on the target first (pg_dump --schema-only)')
    .option('--no-copy-data', 'do not copy the existing rows')
    .option('--wait-sync <sec>', 'native: wait up to this long for the initial copy to finish')
    .option('--json', 'print the subscriber as JSON')
    .action(async (set: string, opts: { target: string; source?: string; subscriber?: string; mode: string; syncStructure?: boolean; copyData: boolean; waitSync?: string; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { InvalidInputError } = await import('../common/errors.js');
      let sub: Subscriber;
      if (opts.mode === 'native') {
        const { subscribeNative } = await import('../logical/subscribe-native.js');
        const waitSync = intOption(opts.waitSync, '--wait-sync', 0, 86400);
        sub = await subscribeNative({
          set, sourceDsn: opts.source, targetDsn: opts.target, name: opts.subscriber, syncStructure: !!opts.syncStructure, copyData: opts.copyData,
          ...(waitSync !== undefined ? { waitSync } : {}),
        });
      } else if (opts.mode === 'agent') {
        const { subscribeAgent } = await import('../logical/agent-subscribe.js');
        sub = await subscribeAgent({ set, sourceDsn: opts.source, targetDsn: opts.target, name: opts.subscriber, syncStructure: !!opts.syncStructure, copyData: opts.copyData });
      } else {
        throw new InvalidInputError(`invalid --mode '${opts.mode.slice(0, 32)}': native or agent`);
      }
      const { redactDsn } = await import('../pg/connect.js');
      const shown = { ...sub, target: redactDsn(sub.target) };
      if (opts.json) printJson(withFormat('sets-subscribe', shown));
      else w(`subscribed ${sub.name} (${sub.mode}) to set ${set}: slot ${sub.slot}, target ${shown.target}${sub.mode === 'agent' ? `; run: pgark sets apply ${set} --subscriber ${sub.name}` : ''}`);
    });
  deprecatedAlias(subscribe, '--name <sub>', '--subscriber');

  const apply = sets
    .command('apply <set>')
    .summary('run the apply worker of an agent subscriber')
    .description('Run the apply worker of an agent subscriber (long-running; stops cleanly on SIGTERM/SIGINT).')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--subscriber <name>', 'the agent subscriber (default: the set\'s only agent subscriber)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>/metrics (0 = any free port)')
    .action(async (set: string, opts: { source?: string; subscriber?: string; metricsPort?: string }, cmd: Command) => {
      settingsFrom(cmd);
      const metricsPort = intOption(opts.metricsPort, '--metrics-port', 0, 65535);
      let name = opts.subscriber;
      if (name === undefined) {
        const { withSource } = await import('../logical/sets-admin.js');
        const { readSet } = await import('../logical/set-catalog.js');
        const agents = (await withSource(opts.source, (c) => readSet(c, set))).subscribers.filter((s) => s.mode === 'agent');
        const { InvalidInputError } = await import('../common/errors.js');
        if (agents.length !== 1) {
          throw new InvalidInputError(`set '${set}' has ${agents.length === 0 ? 'no agent subscriber (pgark sets subscribe --mode agent)' : `several agent subscribers (${agents.map((a) => a.name).join(', ')}): name one with --subscriber`}`);
        }
        name = agents[0]!.name;
      }
      const { runApplyWorker } = await import('../logical/apply-worker.js');
      const signal = abortOnSignals((sig) => `${sig}: stopping the apply worker after the current transaction`);
      log.info(`applying set ${set} for subscriber ${name}`);
      await runApplyWorker({ set, sourceDsn: opts.source, name, signal, ...(metricsPort !== undefined ? { metricsPort } : {}) });
    });
  deprecatedAlias(apply, '--name <sub>', '--subscriber');
}

function printTableChange(r: import('../logical/sets-admin.js').TableChangeResult, json: boolean | undefined): void {
  if (json) printJson(withFormat('sets-table-change', r));
  else {
    w(`${r.action} table ${r.table} ${r.action === 'added' ? 'to' : 'from'} set ${r.set}`);
    for (const s of r.structureCreated ?? []) w(`  created the table on the target of ${s} (--sync-structure)`);
    for (const s of r.refreshed) w(`  refreshed subscription ${s} on its target`);
    for (const s of r.pending) w(`  agent subscriber ${s} will copy it (pending table)`);
    for (const f of r.failed) w(`  WARNING: ${f.error}`);
  }
  if (r.failed.length > 0) throw new ExitWith(1);
}
