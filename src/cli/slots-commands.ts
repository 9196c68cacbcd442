/**
 * CLI wiring of `pgark slots ...`: replication slots on the source (--source DSN or the libpq
 * environment; no password in a DSN). Implementations load only when a command runs.
 */
import type { Command } from 'commander';
import { printJson, settingsFrom } from './context.js';
import { SOURCE_HELP } from './sets-commands.js';
import { withFormat } from '../json/format.js';

const w = (s: string) => process.stdout.write(s + '\n');

export function registerSlotsCommands(program: Command): void {
  const slots = program.command('slots').summary('replication slots on the source: list, drop');
  slots
    .command('list')
    .summary('list replication slots on the source')
    .description('Every replication slot on the source: type, plugin, active (pid), retained WAL, lag, and the pgark set owning it.')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { source?: string; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { withSource } = await import('../logical/sets-admin.js');
      const { listSlots } = await import('../logical/slots.js');
      const all = await withSource(opts.source, (c) => listSlots(c));
      if (opts.json) printJson((await import('../json/sets-json.js')).slotsListJson(all));
      else if (all.length === 0) w('no replication slots');
      else {
        for (const s of all) {
          const owner = s.owner ? `set ${s.owner.set} subscriber ${s.owner.subscriber}` : 'not a pgark set slot';
          const retained = s.retainedBytes === null ? '?' : `${s.retainedBytes} bytes`;
          w(`${s.slot}: ${s.type}${s.plugin ? ` (${s.plugin})` : ''}, ${s.active ? `active (pid ${s.activePid})` : 'inactive'}, retains ${retained}${s.walStatus ? ` (${s.walStatus})` : ''}; ${owner}`);
        }
      }
    });
  slots
    .command('drop <slot>')
    .summary('drop a replication slot')
    .description('Drop a replication slot. Refuses an active slot (naming its pid) and a slot a pgark set subscriber uses (pgark sets drop --subscriber is the way for those) unless --force, which also terminates the slot\'s holder.')
    .option('--source <dsn>', SOURCE_HELP)
    .option('--force', 'terminate the process holding the slot')
    .option('--json', 'print the result as JSON')
    .action(async (slot: string, opts: { source?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      settingsFrom(cmd);
      const { withSource } = await import('../logical/sets-admin.js');
      const { dropSlotChecked } = await import('../logical/slots.js');
      const r = await withSource(opts.source, (c) => dropSlotChecked(c, slot, !!opts.force));
      if (opts.json) printJson(withFormat('slots-drop', r));
      else w(`dropped slot ${slot}${r.owner ? ` (still recorded for subscriber ${r.owner.subscriber} of set ${r.owner.set}: pgark sets drop ${r.owner.set} --subscriber ${r.owner.subscriber})` : ''}`);
    });
}
