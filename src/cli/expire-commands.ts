/** CLI wiring of the retention commands `pgark expire`, `keep` and `delete`. Implementations load only when a command runs. */
import type { Command } from 'commander';
import { printJson, settingsFrom, withRepository } from './context.js';
import { ConfigError } from '../common/errors.js';
import { moreRepoSettings, type Settings } from '../config/resolve.js';
import type { ExpireOutcome, RetentionSettings } from '../catalog/expire.js';
import { formatBytes } from './format.js';

export function registerExpireCommands(program: Command): void {
  program
    .command('expire')
    .summary('remove backups and WAL that the retention policy no longer needs')
    .description(
      'Apply the retention policy (flags, PGARK_RETAIN_* or the config file). A backup is kept when any ' +
      'rule keeps it: --retain-full N (newest N fulls and their incrementals), --retain-window DUR (every ' +
      'point of the window stays restorable), --retain-daily/--retain-weekly/--retain-monthly N (newest ' +
      'backup of each of the last N days/ISO weeks/months that have one). Pinned backups (pgark keep) ' +
      'and the newest backup are always kept, and a kept backup keeps its whole chain. WAL below the ' +
      'start of the oldest kept backup is removed; history files are kept. With no rule, nothing happens.',
    )
    .option('--retain-full <n>', 'keep the newest N full backups and their incrementals')
    .option('--retain-window <duration>', 'keep every point of this window restorable (e.g. 7d, 36h, 2w)')
    .option('--retain-daily <n>', 'keep the newest backup of each of the last N days')
    .option('--retain-weekly <n>', 'keep the newest backup of each of the last N ISO weeks')
    .option('--retain-monthly <n>', 'keep the newest backup of each of the last N months')
    .option('--dry-run', 'print the plan, remove nothing')
    .option('--in <repo>', 'with several repositories: expire only this one (repo, repo2, repo3; default: each in turn, with its own policy)')
    .option('--json', 'print as JSON (with several repositories, of the one --in names)')
    .action(async (opts: { dryRun?: boolean; json?: boolean; in?: string }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runExpire } = await import('../catalog/expire.js');
      // Several repositories (README "Several repositories"): each has its own backups and policy
      // (repoN-retain-*, else repo's retain-*).
      const all = [{ name: 'repo', settings: settings as Settings, retention: settings as RetentionSettings }, ...settings.moreRepos.map((m) => ({ name: m.name, settings: { ...settings, ...moreRepoSettings(settings, m) }, retention: m.retention ?? settings }))];
      const targets = opts.in === undefined ? all : all.filter((r) => r.name === opts.in);
      if (targets.length === 0) throw new ConfigError(`--in ${opts.in}: no such repository (configured: ${all.map((r) => r.name).join(', ')})`);
      if (opts.json && targets.length > 1) throw new ConfigError(`--json with ${targets.length} repositories: name one with --in (${all.map((r) => r.name).join(', ')})`);
      for (const t of targets) {
        const out = await withRepository(t.settings, (repo) => runExpire(repo, { retention: t.retention, dryRun: !!opts.dryRun }));
        if (opts.json) {
          printJson((await import('../json/catalog-json.js')).expireJson(out));
          return;
        }
        if (all.length > 1) process.stdout.write(`${t.name} (${t.settings.repo}):\n`);
        printExpire(out);
      }
    });

  program
    .command('keep')
    .summary('pin a backup so that expire never removes it (or --release the pin)')
    .argument('<id>', "backup id or 'latest'")
    .option('--release', 'remove the pin')
    .action(async (ref: string, opts: { release?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { setPin } = await import('../catalog/expire.js');
      const r = await withRepository(settings, (repo) => setPin(repo, ref, !!opts.release), { stanza: 'require' });
      process.stdout.write(`backup ${r.id} ${opts.release ? (r.changed ? 'released' : 'was not pinned') : r.changed ? 'pinned (with its chain)' : 'was already pinned'}\n`);
    });

  program
    .command('delete')
    .summary('delete one backup')
    .description('Delete a backup. Refused when incrementals depend on it, it is pinned, or the retention policy keeps it, unless --force (which also deletes the backups that depend on it).')
    .argument('<id>', 'backup id')
    .option('--force', 'delete even if that breaks a chain, a pin or the retention policy')
    .action(async (ref: string, opts: { force?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runDelete } = await import('../catalog/expire.js');
      const r = await withRepository(settings, (repo) => runDelete(repo, { retention: settings, ref, force: !!opts.force }));
      for (const why of r.overridden) process.stdout.write(`forced: ${why}\n`);
      process.stdout.write(`deleted ${r.removed.join(', ')}\n`);
    });
}

function printExpire(out: ExpireOutcome): void {
  const verb = out.dryRun ? 'would remove' : 'removed';
  const wal = out.wouldRemove ? out.wouldRemove.wal : { files: out.wal.removed, bytes: out.wal.removedBytes };
  for (const k of out.plan.keep) process.stdout.write(`keep    ${k.id}  (${k.reasons.join('; ')})\n`);
  for (const e of out.plan.expire) process.stdout.write(`${out.dryRun ? 'expire ' : 'expired'} ${e.id}  (${e.reason})\n`);
  for (const w of out.plan.warnings) process.stdout.write(`warning: ${w}\n`);
  for (const id of out.wouldRemove?.uncommitted ?? out.removedUncommitted) process.stdout.write(`${verb} uncommitted backup ${id}\n`);
  process.stdout.write(`WAL: ${verb} ${wal.files} file(s) (${formatBytes(wal.bytes)})` +
    (out.wal.keptFrom ? `; WAL from ${out.wal.keptFrom} on is kept` : '') + '\n');
}
