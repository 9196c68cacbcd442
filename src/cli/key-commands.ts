/** CLI wiring of `pgark key init|list|rotate|retire|decrypt-object` (docs/ENCRYPTION.md). */
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../common/errors.js';
import { printJson, settingsFrom, withRepository } from './context.js';
import { intOption } from './options.js';
import { withFormat } from '../json/format.js';

export function registerKeyCommands(program: Command): void {
  const key = program
    .command('key')
    .summary('client-side encryption: keyring init, list, rotate, retire, decrypt-object')
    .description(
      'Encryption of a stanza (docs/ENCRYPTION.md). The key-encryption key (KEK) comes from the file ' +
      'cipher-key-file names or the environment variable cipher-key-env names (64 hex digits, or a ' +
      'passphrase stretched with scrypt): never from the command line. Exit 15 when the key is missing or wrong.',
    );
  key
    .command('init')
    .summary('encrypt the stanza from now on: create its keyring')
    .description(
      'Create <stanza>/keyring.json: a random data key wrapped under the configured KEK. From then on every ' +
      'object pgark stores under the stanza is encrypted, and every pgark process needs the KEK. Objects ' +
      'stored before stay plain and readable (the keyring records that the stanza had data). --in repo2 creates the ' +
      'keyring of another repository of the stanza (under its repo2-cipher-key-* key); --share-from repo gives it that ' +
      'repository\'s data keys (wrapped under its own KEK) instead of a new one, so that pgark copy between them copies ' +
      'encrypted objects as stored.',
    )
    .option('--in <repo>', 'the repository whose keyring to create: repo (default), repo2, repo3')
    .option('--share-from <repo>', 'take the data keys of this repository of the stanza (opened with its own key-encryption key)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { in?: string; shareFrom?: string; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const [{ keyInit }, { repoNamed }] = await Promise.all([import('../repo/key-admin.js'), import('./repo-named.js')]);
      const into = opts.in ?? 'repo';
      if (opts.shareFrom === into) throw new ConfigError(`--share-from ${into} names the repository whose keyring is created: name another one`);
      const target = repoNamed(settings, into, '--in');
      const out = opts.shareFrom === undefined
        ? await withRepository(target, (r) => keyInit(r))
        : await withRepository(repoNamed(settings, opts.shareFrom, '--share-from'), (from) => withRepository(target, (r) => keyInit(r, { shareFrom: from })));
      if (opts.json) return printJson(withFormat('key-init', out));
      process.stdout.write(`stanza '${out.stanza}' is encrypted from now on (key-encryption key ${out.kekId})` +
        `${out.sharedFrom !== undefined ? ` with the data keys ${out.sharedKeys!.join(', ')} of ${opts.shareFrom} (${out.sharedFrom})` : ''}` +
        `${out.allowPlain ? '; its objects stored before stay plain and readable' : ''}\n`);
    });
  key
    .command('list')
    .summary('show the keyring: key-encryption key id, data keys and their ages')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { keyList } = await import('../repo/key-admin.js');
      const out = await withRepository(settings, (r) => keyList(r));
      if (opts.json) return printJson(withFormat('key-list', out));
      if (!out.encrypted) {
        process.stdout.write(`stanza '${out.stanza}' is not encrypted (no keyring)\n`);
        return;
      }
      const lines = [
        `stanza '${out.stanza}': key-encryption key ${out.kek!.id} (${out.kek!.kdf === 'scrypt' ? 'passphrase, scrypt' : 'raw key'})` +
          `${out.verified ? '' : ' [keyring not verified: no key configured]'}`,
        `  created ${out.createdAt}${out.rotatedAt ? `, last rotated ${out.rotatedAt}` : ''}${out.allowPlain ? '; plain objects from before are read' : ''}`,
        ...out.keys.map((k) => `  data key ${k.n}${k.current ? ' (current)' : ''}  created ${k.createdAt}  age ${k.ageDays}d`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
  key
    .command('rotate')
    .summary('re-wrap the keyring under a new key-encryption key (data objects untouched)')
    .description(
      'Open the keyring with the configured KEK and re-wrap every data key under the new one ' +
      '(--new-key-file or --new-key-env: a path or a variable name). Then put the new key where ' +
      'cipher-key-file / cipher-key-env point (processes started in between fail with exit 15 and retry). ' +
      '--new-data-key also starts a new data key for new objects; old ones keep theirs.',
    )
    .option('--new-key-file <file>', 'file holding the new KEK')
    .option('--new-key-env <name>', 'environment variable holding the new KEK')
    .option('--new-data-key', 'new objects use a new random data key from now on')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { newKeyFile?: string; newKeyEnv?: string; newDataKey?: boolean; json?: boolean }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      if ((opts.newKeyFile === undefined) === (opts.newKeyEnv === undefined)) throw new ConfigError('give exactly one of --new-key-file and --new-key-env');
      const { keyFileSource, keyEnvSource } = await import('../repo/repo-cipher.js');
      const next = opts.newKeyFile !== undefined ? keyFileSource(resolve(opts.newKeyFile)) : keyEnvSource(opts.newKeyEnv!);
      const { keyRotate } = await import('../repo/key-admin.js');
      const out = await withRepository(settings, (r) => keyRotate(r, next, { newDataKey: !!opts.newDataKey }));
      if (opts.json) return printJson(withFormat('key-rotate', out));
      process.stdout.write(`stanza '${out.stanza}': keyring re-wrapped from key-encryption key ${out.oldKekId} to ${out.newKekId}; current data key ${out.current}\n`);
    });
  key
    .command('retire')
    .summary('drop a data key that no object uses any more')
    .argument('<n>', 'data key number (pgark key list)')
    .action(async (n: string, _opts: unknown, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const { keyRetire } = await import('../repo/key-admin.js');
      const out = await withRepository(settings, (r) => keyRetire(r, intOption(n, 'data key number', 1, 65535)!));
      process.stdout.write(`stanza '${out.stanza}': data key ${out.retired} retired\n`);
    });
  key
    .command('decrypt-object')
    .summary('emergency: turn one encrypted object into its plain lz4/zstd/gzip form')
    .description(
      'Write the plain pgark object (format version 1) of the encrypted object <key> to <out>: the same ' +
      'codec stream, which lz4 -d / zstd -d / gzip -d decode (docs/REPOSITORY.md "Recovering by hand"). ' +
      'Needs the KEK and the stanza keyring in the repository; --from-file reads the object bytes from a copy.',
    )
    .argument('<key>', "the object's key in the repository, e.g. main/wal/00000001/0000000100000000/000000010000000000000003")
    .argument('<out>', 'file to write (0600; replaced atomically)')
    .option('--from-file <path>', 'read the stored object from this file instead of the repository')
    .action(async (objectKey: string, out: string, opts: { fromFile?: string }, cmd: Command) => {
      const settings = settingsFrom(cmd);
      const [{ decryptObject }, { writeFileAtomic }] = await Promise.all([import('../repo/key-admin.js'), import('../common/fs-atomic.js')]);
      const n = await withRepository(settings, async (r) =>
        writeFileAtomic(resolve(out), await decryptObject(r, objectKey, opts.fromFile !== undefined ? createReadStream(opts.fromFile) : undefined)));
      process.stderr.write(`wrote ${n} bytes to ${out}\n`);
    });
  for (const c of key.commands) c.exitOverride();
}
