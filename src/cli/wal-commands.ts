/** CLI wiring of the WAL archive commands. Implementations load only when a command runs. */
import { Command, Option } from 'commander';
import { ExitCode, exitCodeOf } from '../common/errors.js';
import { log } from '../common/log.js';
import { spawnWorker } from '../common/spawn-worker.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { ExitWith, WAL_FETCH_FATAL_BASE } from './exit.js';
import { formatBytes } from './format.js';

export function registerWalCommands(program: Command): void {
  program
    .command('wal-push')
    .summary('archive a WAL file (archive_command)')
    .description(
      "Archive one WAL segment, .history, .backup or .partial file. Use as\n  archive_command = 'pgark wal-push %p'\n" +
      'Identical content already archived succeeds; different content under the same name fails with\n' +
      'exit 3 ("archive mismatch") and is never overwritten. After the requested segment is stored, a\n' +
      'background worker pushes up to --push-ahead further segments PostgreSQL marked ready, --jobs at\n' +
      'a time; PostgreSQL\'s calls for those return as soon as they are durably stored.',
    )
    .argument('<path>', 'path of the file, as PostgreSQL passes it (%p)')
    .option('--push-ahead <n>', 'further ready segments to push in the same call (default 16)')
    .option('--jobs <n>', 'parallel uploads (default 4)')
    .option('--codec <name>', 'lz4, zstd, gzip or none (default: the stanza\'s)')
    .option('--compress-level <n>', 'codec level')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { walPush } = await import('../wal/wal-push.js');
      const report = await withRepository(settings, (repo) => walPush(repo, settings, path));
      if (opts.json) printJson(report);
    });

  program
    .command('wal-fetch')
    .summary('restore a WAL file from the archive (restore_command)')
    .description(
      "Restore one archived WAL file. Use as\n  restore_command = 'pgark wal-fetch %f %p'\n" +
      'Exit codes: 0 restored; 1 not in the archive (PostgreSQL ends recovery there or keeps waiting;\n' +
      'in a standby\'s data directory (standby.signal) also while the stanza does not exist yet);\n' +
      `${WAL_FETCH_FATAL_BASE}+N for any other error N (e.g. ${WAL_FETCH_FATAL_BASE + ExitCode.STORAGE} storage unreachable after retries, ` +
      `${WAL_FETCH_FATAL_BASE + ExitCode.INTEGRITY} checksum mismatch or a damaged segment (not a whole segment),\n${WAL_FETCH_FATAL_BASE + ExitCode.INVALID_INPUT} invalid name, ${WAL_FETCH_FATAL_BASE + ExitCode.USAGE} configuration,\n${WAL_FETCH_FATAL_BASE + ExitCode.KEY} encryption key missing or wrong): above 125, so PostgreSQL stops recovery\n` +
      'rather than promoting early. After a segment is restored, the next --prefetch segments are\n' +
      'downloaded in the background into <pg_wal>/.pgark/prefetch, and the worker keeps that many ready\n' +
      'while replay consumes them.',
    )
    .argument('<name>', 'WAL file name requested by PostgreSQL (%f)')
    .argument('<destination>', 'where to write it (%p)')
    .option('--prefetch <n>', 'segments to download ahead; 0 switches prefetch off (default 8)')
    .option('--fetch-received <bool>', 'serve a segment pgark receive has only partly stored, zero-filled (default true)')
    .option('--jobs <n>', 'parallel prefetch downloads (default 4)')
    .action(async (name: string, dest: string, _opts: unknown, cmd: Command) => {
      try {
        const settings = settingsFrom(cmd);
        const { walFetch } = await import('../wal/wal-fetch.js');
        const res = await withRepository(settings, (repo) => walFetch(repo, settings, name, dest, process.cwd()));
        if (res.status === 'missing') throw new ExitWith(ExitCode.FAILURE);
        if (res.prefetch.length > 0) {
          spawnWorker(['wal-prefetch', res.prefetchDir, ...res.prefetch], settings);
        }
      } catch (err) {
        // Only walFetch's own 'missing' answer may exit 1; every other failure stops recovery.
        if (err instanceof ExitWith) throw err;
        const code = exitCodeOf(err);
        log.error(`${(err as Error).message}`);
        throw new ExitWith(WAL_FETCH_FATAL_BASE + code);
      }
    });

  program
    .command('wal-push-ahead', { hidden: true })
    .description('internal: push segments ahead of PostgreSQL (started by wal-push)')
    .argument('<wal-dir>')
    .argument('<names...>')
    .action(async (walDir: string, names: string[], _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runPushAhead } = await import('../wal/push-ahead.js');
      const { assertWalFileName } = await import('../wal/segment-name.js');
      names.forEach((n) => assertWalFileName(n));
      await withRepository(settings, (repo) => runPushAhead(repo, settings, walDir, names));
    });

  program
    .command('wal-prefetch', { hidden: true })
    .description('internal: download segments into the prefetch area (started by wal-fetch)')
    .argument('<prefetch-dir>')
    .argument('<names...>')
    .action(async (dir: string, names: string[], _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { runPrefetch } = await import('../wal/prefetch.js');
      const { assertWalFileName } = await import('../wal/segment-name.js');
      names.forEach((n) => assertWalFileName(n));
      await withRepository(settings, (repo) => runPrefetch(repo, dir, names, settings));
    });

  program
    .command('wal-verify')
    .summary('check the archive for gaps (and damage with --read)')
    .description(
      'Per timeline: archived ranges, gaps, partial and backup files, history files and fork points.\n' +
      'Exit 7 when a gap lies inside an archived range or (with --read) an object fails its checksum\n' +
      'or a segment object is not a whole segment (wrong size, page headers out of sequence).',
    )
    .option('--read', 're-read and verify every archived object')
    .option('--jobs <n>', 'parallel reads with --read (default 4)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { read?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { walVerify } = await import('../wal/wal-verify.js');
      const report = await withRepository(settings, (repo) => walVerify(repo, { read: !!opts.read, jobs: settings.jobs }));
      if (opts.json) printJson(report);
      else {
        const { printVerifyReport } = await import('./wal-report.js');
        printVerifyReport(report);
      }
      if (!report.ok) throw new ExitWith(ExitCode.VERIFY_FAILED);
    });

  program
    .command('wal-log')
    .summary('show the WAL audit trail')
    .description('Every push, fetch, mismatch and failure recorded in the repository, oldest first.')
    .option('--since <when>', 'ISO date/time, or a duration such as 2h, 3d (default 1d)', '1d')
    .option('--json', 'print events as JSON')
    .action(async (opts: { since: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { parseSince } = await import('./format.js');
      const { readAudit } = await import('../wal/audit.js');
      const since = parseSince(opts.since);
      const events = await withRepository(settings, (repo) => readAudit(repo, since));
      if (opts.json) return printJson(events);
      for (const e of events) {
        const size = e.size !== undefined ? ` ${formatBytes(e.size)}` : '';
        const sha = e.sha256 ? ` sha256:${e.sha256.slice(0, 12)}` : '';
        const detail = e.detail ? ` ${e.detail}` : '';
        process.stdout.write(`${e.time} ${e.op.padEnd(11)} ${e.name}${size}${sha} ${e.ms}ms ${e.host}[${e.pid}]${detail}\n`);
      }
    });

  program
    .command('check-repo')
    .summary('probe the repository: write, put-if-absent, stat, list, read, ranged read, replace, delete')
    .description('Writes one probe object under <stanza>/probe/, checks each operation pgark needs (a conditional create must refuse to replace it), deletes it, and reads the repository marker and the stanza metadata. Exit 0 when every probe passed, 10 otherwise; 9 (nothing written) when the location is not a repository: run pgark repo create first.')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { probeRepository, formatProbeReport } = await import('../repo/repo-probe.js');
      const { readRepoMarker, REPO_MARKER_KEY } = await import('../repo/repo-marker.js');
      // Opening the repository refused a location without the marker (exit 9) before any probe was written.
      const report = await withRepository(settings, (repo) =>
        probeRepository(repo.driver, repo.stanza, async () => {
          const meta = await repo.readStanza();
          if (!meta) return `stanza '${repo.stanza}' not created yet (the first wal-push or backup creates it)`;
          return `stanza '${repo.stanza}': system identifier ${meta.systemIdentifier}, PostgreSQL ${meta.pgVersion}`;
        }, async () => {
          const m = await readRepoMarker(repo);
          if (!m) throw new Error(`no repository marker '${REPO_MARKER_KEY}' (an older pgark's repository that could not be marked): run pgark repo create`);
          return `'${REPO_MARKER_KEY}': format ${m.format}, created ${m.createdAt} by ${m.createdBy}`;
        }),
      );
      if (opts.json) printJson(report);
      else process.stdout.write(formatProbeReport(report));
      if (!report.ok) throw new ExitWith(ExitCode.STORAGE);
    });

  program
    .command('info')
    .summary('show the stanza and its archive')
    .description('Stanza, cluster identifier, PostgreSQL version, codec, WAL range per timeline, archived count and size, last push time; with --pgdata, the archive agent\'s queue, oldest waiting segment, rate and errors.')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { collectInfo, printInfo } = await import('./wal-report.js');
      const info = await withRepository(settings, (repo) => collectInfo(repo, settings.pgdata));
      if (opts.json) printJson(info);
      else printInfo(info);
    });
}

export { Option };
