/** CLI wiring of `pgark show`. The implementation loads only when the command runs. */
import type { Command } from 'commander';
import { describeBackup } from './backup-text.js';
import { printJson, settingsFrom, withRepository } from './context.js';

export function registerShowCommand(program: Command): void {
  program
    .command('show')
    .summary('show one backup')
    .argument('<id>', "backup id or 'latest'")
    .option('--files', 'list the files (path, size, where stored)')
    .option('--json', 'print as JSON')
    .action(async (ref: string, opts: { files?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { listBackups, listPins, findBackup, readManifest } = await import('../catalog/catalog.js');
      await withRepository(settings, async (repo) => {
        const backups = await listBackups(repo);
        const b = findBackup(backups, ref);
        const pinned = (await listPins(repo)).has(b.id);
        const manifest = opts.files || b.checksumFailures > 0 ? await readManifest(repo, b) : undefined;
        const files = manifest ? [...manifest.files.values()] : [];
        if (opts.json) {
          printJson((await import('../json/catalog-json.js')).showJson(b, pinned, manifest, !!opts.files));
          return;
        }
        process.stdout.write(describeBackup(b, pinned) + '\n');
        for (const f of files) if (f.checksumFailures) process.stdout.write(`  checksum failure: ${f.path} blocks ${f.checksumFailures.join(', ')}\n`);
        if (opts.files) {
          for (const f of files) {
            const where = f.object ? (f.object.backup === b.id ? `object ${f.object.n}` : `from ${f.object.backup}`)
              : f.delta ? `delta: ${f.delta.blocks.reduce((n, r) => n + r[1], 0)} blocks in object ${f.delta.n}`
              : f.parts ? `${f.parts.length} parts` : 'empty';
            process.stdout.write(`  ${f.path}  ${f.size}  ${where}\n`);
          }
        }
      }, { stanza: 'require' });
    });
}
