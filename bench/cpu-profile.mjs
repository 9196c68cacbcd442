// Summarise `node --cpu-prof` profiles (main thread and worker threads: one .cpuprofile each) as
// self time by category: where the CPU seconds of a command went.
//
//   node bench/cpu-profile.mjs DIR_OR_FILES...     # prints a markdown table
//
// Categories come from the function and script of each sampled frame (self time only, so a
// native call such as sha256 counts where it runs, not in its callers).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** [category, test(functionName, url)] in order: the first match wins. */
const FS_META = /^(open|openFileHandle|close|lstat|stat|fstat|rename|mkdir|mkdtemp|readdir|opendir|futimes|utimes|lutimes|chmod|fchmod|chown|fchown|unlink|rmdir|rm|symlink|readlink|link|access|existsSync|statfs|ftruncate|truncate)$/;
const RULES = [
  ['(idle)', (f) => f === '(idle)'],
  ['GC', (f) => f === '(garbage collector)'],
  // native code outside any JavaScript frame: the event loop's own work, callbacks' C++ side, the profiler
  ['(program)', (f) => f === '(program)'],
  ['hash (sha256)', (f, u) => (/^(update|digest|Hash|hash)$/.test(f) && /^(node:internal\/crypto\/hash|node:internal\/crypto\/util|)$/.test(u)) || /crypto\/hash/.test(u)],
  // backup's page checksums: WebAssembly (src/backup/page-checksum-wasm.ts) and its JS wrapper
  ['page checksum (WASM)', (f, u) => /^wasm:/.test(u) || /page-checksum/.test(u)],
  // the agent's checks of WAL pages (headers, zeroed tails) before it stores a segment
  ['WAL segment checks (JS)', (f, u) => /wal\/segment-check/.test(u)],
  // compressLz4Block's self time is lz4-napi's native block compressor (a native call has no frame of its own)
  ['compress (lz4, native)', (f, u) => /compress(Lz4)?(Block|Sync|Frame)?$/i.test(f) && !/uncompress|decompress/i.test(f) && /lz4|codecs/.test(u) || /lz4-napi/.test(u)],
  // restore decodes lz4 in JavaScript (src/io/codecs/lz4-block.ts) and parses frames (lz4-frame-decoder.ts)
  ['decompress (lz4 block decode, JS)', (f, u) => /lz4-block|lz4-decode/.test(u) || /uncompress|decompress|decodeLz4/i.test(f)],
  ['lz4 frame parsing (JS)', (f, u) => /lz4-frame-decoder|xxhash32|codecs\/lz4\.js/.test(u)],
  ['write (fs)', (f) => /^(write|writev|writeBuffer|writeBuffers|writeString|pwrite|writeFileUtf8)$/i.test(f)],
  ['fsync', (f) => /^(fsync|sync|fdatasync)$/i.test(f)],
  ['read (fs)', (f, u) => /^(read|readBuffer|readBuffers|readv|pread)$/i.test(f) || (/streams\/readable|fs\/streams/.test(u) && /read/i.test(f))],
  ['open / close / stat / mkdir / rename (fs)', (f, u) => FS_META.test(f) && (u === '' || /^node:(fs|internal\/fs)/.test(u))],
  ['copy / Buffer operations', (f, u) => /^(concat|copy|_copy|_copyActual|from|alloc|allocUnsafe|allocUnsafeSlow|createUnsafeBuffer|FastBuffer|subarray|slice|fill|compare|equals|write(Big)?U?_?Int\w*|read(Big)?U?_?Int\w*|toString|byteLength)$/.test(f) && /buffer/.test(u)],
  ['messaging (postMessage, worker)', (f, u) => /postMessage|onmessage|emitMessage|MessagePort/i.test(f) || /worker|messageport|worker-pool/.test(u)],
  ['child processes (spawn, execFile)', (f, u) => /child_process/.test(u)],
  ['PostgreSQL client (pg)', (f, u) => /node_modules\/(pg|pg-protocol|pg-types|pgpass|pg-connection-string)\//.test(u)],
  ['streams machinery', (f, u) => /internal\/streams|node:stream|internal\/webstreams/.test(u)],
  ['promises / async glue', (f, u) => /processTicksAndRejections|runMicrotasks|(^|\s)await/.test(f) || /internal\/process\/task_queues|internal\/fs\/promises|internal\/async_hooks|internal\/timers/.test(u)],
  ['startup / module loading', (f, u) => /internal\/modules|node:internal\/main|internal\/bootstrap|loader|node_modules\/commander/.test(u) || /^(ModuleWrap|getPackageScopeConfig|internalModuleStat|readPackageJSON|getNearestParentPackageJSON|compileFunction|compileSourceTextModule|dlopen|readFileUtf8|link|instantiate|evaluate)$/.test(f)],
  ['JSON parse / stringify', (f, u) => /^(parse|stringify)$/.test(f) && u === ''],
  ['manifests and catalog (JS)', (f, u) => /\/catalog\//.test(u)],
  ['restore worker (JS)', (f, u) => /restore-worker|private-file|restore\/plan/.test(u)],
  ['object stream (JS)', (f, u) => /object-stream|object-format|object-reader|one-pass-encoder/.test(u)],
  ['pgark other (JS)', (f, u) => /\/dist\/|pgark/.test(u)],
  ['node internals other', (f, u) => /^node:/.test(u)],
  ['native / other', () => true],
];

export function categorise(fn, url) {
  for (const [name, test] of RULES) if (test(fn, url)) return name;
  return 'native / other';
}

/** { total µs, by category µs, threads } over every profile file. */
export function profileTotals(files) {
  const by = new Map();
  let total = 0;
  let idle = 0;
  const top = new Map();
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8'));
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map();
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i + 1] ?? 0;
      self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
    }
    for (const [id, us] of self) {
      const n = nodes.get(id);
      const fn = n.callFrame.functionName || '(anonymous)';
      const url = n.callFrame.url;
      const cat = categorise(fn, url);
      if (cat === '(idle)') {
        idle += us;
        continue;
      }
      total += us;
      by.set(cat, (by.get(cat) ?? 0) + us);
      const k = `${fn} ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
      top.set(k, (top.get(k) ?? 0) + us);
    }
  }
  return { total, idle, by, top, threads: files.length };
}

export function summariseProfiles(files, topN = 12) {
  const { total, idle, by, top, threads } = profileTotals(files);
  const rows = [...by].sort((a, b) => b[1] - a[1]);
  const lines = [`${threads} profiles (threads); sampled CPU (excluding idle) ${(total / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`, '', '| category | CPU s | share |', '|---|---|---|'];
  for (const [cat, us] of rows) lines.push(`| ${cat} | ${(us / 1e6).toFixed(2)} | ${((100 * us) / total).toFixed(1)} % |`);
  lines.push('', '| top functions (self) | CPU s |', '|---|---|');
  for (const [k, us] of [...top].sort((a, b) => b[1] - a[1]).slice(0, topN)) lines.push(`| \`${k}\` | ${(us / 1e6).toFixed(2)} |`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2).flatMap((a) => (statSync(a).isDirectory() ? readdirSync(a).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(a, f)) : [a]));
  console.log(summariseProfiles(files, 25));
}
