// "Where each second goes" (issue 17 item 1) from a `perf record -g` file: every sample is put in
// one category, by what the CPU was doing when it was taken (its self time), not by every function
// that happens to be on its call chain:
//
//  - a sample in the kernel (leaf frame in [kernel.kallsyms]) counts as the system call or event
//    it serves, from the kernel part of its chain (read, write, fsync, open/close/metadata,
//    page faults and mmap, futex/epoll/eventfd wake-ups, scheduling, else "kernel other"); a
//    page fault or a write() made under an lz4-named JavaScript frame is memory or write, not
//    decompression;
//  - a sample in user space counts as the innermost frame (leaf first, walking outwards) that a
//    SPECIFIC rule names (sha256 code, the lz4 block decoder or a native lz4 codec, GC, the
//    optimising compilers, start-up, manifests JS, page checksums, WAL page checks, thread
//    messaging); the walk stops at the first JavaScript function frame (`JS:` from
//    --perf-basic-prof) or at the second native frame that is not a builtin, so a function only
//    counts for what it runs itself and for the V8 builtins it calls, never for a system call or a
//    C++ callee below it; at the leaf only: memmove/memcpy/memset = "copy", malloc/free; a leaf
//    that is JIT code or a builtin = "JS", any other native leaf = "runtime other".
//
// Before 2026-12-07 a sample went to the first rule that matched ANY frame of its chain, with
// "decompress (lz4)" matched on /lz4/i before read/write/copy: every write, copy or page fault made
// under a frame of dist/src/io/codecs/lz4-frame-decoder.js counted as decoding (bench/results/
// profile.md, note of 2026-12-07).
//
//   perf record -F 999 -g -o /tmp/x.data -- node --perf-basic-prof bin/pgark.js restore ...
//   node bench/perf-where.mjs /tmp/x.data [hz] [--md] [--owners]   # seconds = samples / hz
//
// --owners also lists, per category, the innermost JavaScript function of its samples (which
// function's copies, writes or hashing they were): e.g. copy under decodeLz4BlockInto (literal
// runs) apart from copy under Lz4FrameParser.next (blocks gathered across reads).
// Only CPU time is sampled (descheduled time is not), unlike `node --cpu-prof` on a loaded
// machine.
import { execFileSync } from 'node:child_process';

const KERNEL = /\[kernel/;
const JS_FRAME = /^JS:|^LazyCompile:|^Function:|perf-\d+\.map/;
const BUILTIN = /^Builtins_|^v8::internal::Builtin_|^v8::internal::Runtime_/;

/** Kernel samples: [category, test(kernel frames, leaf first)], first match wins. */
const KERNEL_RULES = [
  ['messaging (thread wake-ups, postMessage, eventfd)', (k) => k.some((s) => /futex|eventfd|sys_epoll/.test(s))],
  ['read (repository files)', (k) => k.some((s) => /sys_pread64|sys_read\b|ksys_read|sys_preadv/.test(s))],
  ['write (data directory)', (k) => k.some((s) => /sys_pwrite64|sys_write\b|ksys_write|sys_writev|sys_pwritev/.test(s))],
  ['fsync', (k) => k.some((s) => /sys_fsync|sys_fdatasync|ext4_sync_file|jbd2/.test(s))],
  ['open / close / chmod / utimes / stat / mkdir', (k) => k.some((s) => /sys_openat|sys_close|sys_unlink|sys_fchmod|sys_utimensat|sys_statx|sys_newfstatat|sys_newlstat|sys_newfstat|sys_mkdir|sys_rename|sys_getdents|sys_fstatfs|sys_readlink|sys_lstat|sys_access|sys_ftruncate/.test(s))],
  ['startup (exec, dynamic loading, snapshot, parse, bytecode, module loading)', (k) => k.some((s) => /sys_execve|load_elf_binary/.test(s))],
  ['memory (page faults, mmap, munmap)', (k) => k.some((s) => /asm_exc_page_fault|exc_page_fault|sys_mmap|sys_munmap|sys_madvise|sys_brk|sys_mprotect/.test(s))],
  ['scheduling (context switches)', (k) => k.some((s) => /schedule|finish_task_switch|__switch_to|sched_/.test(s))],
];

/** User-space frames: [category, test(frame)], tried on each frame from the leaf outwards (see above). */
const SPECIFIC = [
  ['GC', (s) => /Heap::|Scavenge|MarkCompact|Sweeper|ConcurrentMarking|GCTracer|MinorMS|ArrayBufferSweeper/.test(s)],
  ['hash + verify (sha256)', (s) => /sha256|SHA256|sha1_block|Hash(Update|Digest)|crypto::Hash/.test(s)],
  // pgark's JavaScript block decoder, liblz4 / lz4-napi (lz4_flex) natively; not frames of files whose name holds "lz4"
  ['decompress (lz4)', (s) => /decodeLz4Block|LZ4_decompress|LZ4_compress|lz4_flex|lz4::block|lz4::frame/.test(s)],
  // backup's page checksums: WebAssembly (src/backup/page-checksum-wasm.ts, export "verify") or the JS fallback
  ['page checksum', (s) => /page-checksum|pageChecksum|checksumPage|wasm-function|Function:verify|\bverify-0\b/.test(s)],
  // the agent's checks of WAL pages (headers, zeroed tails) before it stores a segment (src/wal/segment-check.ts)
  ['WAL page checks (JS)', (s) => /wal\/segment-check/.test(s)],
  ['messaging (thread wake-ups, postMessage, eventfd)', (s) => /MessagePort|postMessage|uv_async_send/.test(s)],
  ['JIT: optimising compilers (TurboFan, Maglev)', (s) => /compiler::|maglev::|Maglev|TurboFan|OptimizedCompilationJob|baseline::|BaselineBatchCompiler/.test(s)],
  ['startup (exec, dynamic loading, snapshot, parse, bytecode, module loading)', (s) => /_dl_|dl_main|Deserializ|Parser::|ParseProgram|ParseFunction|Compiler::Compile|compileSourceTextModule|compileForInternalLoader|internal\/modules|internal\/bootstrap|BytecodeGenerator|Snapshot|InitializeOncePerProcess|RunBootstrapping|BootstrapRealm/.test(s)],
  // restore's and backup's manifests (parse, build, write): pgark's JS under src/catalog/
  ['manifests and catalog (JS)', (s) => /dist\/src\/catalog\//.test(s)],
];

const COPY = 'copy (user memmove / memcpy / memset)';
const JS = 'JS: restore loop, frame parsing, promises (JIT and builtins)';
const RUNTIME = 'runtime other (node, V8, libuv)';

/** One sample's category; `frames`: its call chain, leaf first, each "symbol (dso)". */
export function categorise(frames) {
  const leaf = frames[0] ?? '';
  // WebAssembly functions are named by index only ("wasm-function[0]"): restore's lz4 decoder
  // (src/io/codecs/lz4-block-wasm.ts) is told from backup's page checksums by its caller.
  if (/wasm-function/.test(leaf) && frames.some((f) => /lz4-block-wasm/.test(f))) return 'decompress (lz4)';
  if (KERNEL.test(leaf)) {
    const k = frames.filter((s) => KERNEL.test(s));
    for (const [name, test] of KERNEL_RULES) if (test(k)) return name;
    return 'kernel other';
  }
  let natives = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i];
    if (KERNEL.test(f)) continue;
    for (const [name, test] of SPECIFIC) if (test(f)) return name;
    if (i === 0 && /memmove|memcpy|memset/.test(f)) return COPY;
    if (i === 0 && /malloc|_int_free|cfree|tcache|arena|free\b/.test(f)) return 'malloc / free';
    if (JS_FRAME.test(f)) return natives === 0 ? JS : RUNTIME;
    if (BUILTIN.test(f)) continue;
    // a native frame that is neither a builtin nor named by a rule: the walk goes one frame further
    // (a C++ helper of a specific function, e.g. the hash's update), then it is the runtime's
    if (++natives > 1) return RUNTIME;
  }
  return natives === 0 ? JS : RUNTIME;
}

/** The innermost JavaScript function of a sample (its name, without the optimisation marker and the file's path), for --owners. */
export function owner(frames) {
  for (const f of frames) {
    const m = /^(?:JS|LazyCompile|Function):[*~^+']*([^ ]*)/.exec(f);
    if (m) return m[1] || '(anonymous)';
  }
  return '(no JavaScript frame)';
}

/** --agent: the agent compresses (lz4_flex's encoder) and writes repository files: labels for that. */
const AGENT_LABELS = new Map([
  ['decompress (lz4)', 'compress (lz4)'],
  ['read (repository files)', 'read (WAL segments)'],
  ['write (data directory)', 'write (repository files)'],
  ['JS: restore loop, frame parsing, promises (JIT and builtins)', 'JS: agent loop, page checks, streams, promises (JIT and builtins)'],
]);

export function whereSeconds(file, hz = 999, labels = new Map()) {
  // -f: read node's /tmp/perf-PID.map even when another user (postgres) owns it; without it perf
  // ignores the map and JIT frames have no names
  const out = execFileSync('perf', ['script', '-f', '-i', file, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1024 * 2 ** 20, stdio: ['ignore', 'pipe', 'ignore'] });
  return whereSecondsOfScript(out, hz, labels);
}

/** The same from `perf script -F comm,tid,ip,sym,dso` text; `owners`: seconds per category and innermost JS function. */
export function whereSecondsOfScript(out, hz = 999, labels = new Map()) {
  const by = new Map();
  const owners = new Map();
  let samples = 0;
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const frames = lines.slice(1).map((l) => l.trim().replace(/^[0-9a-f]+ /, ''));
    const cat0 = categorise(frames);
    const cat = labels.get(cat0) ?? cat0;
    by.set(cat, (by.get(cat) ?? 0) + 1);
    const o = `${cat}\t${owner(frames)}`;
    owners.set(o, (owners.get(o) ?? 0) + 1);
    samples++;
  }
  const perSecond = (m) => new Map([...m].map(([k, v]) => [k, v / hz]));
  return { seconds: samples / hz, by: perSecond(by), owners: perSecond(owners) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, hzArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const hz = Number(hzArg ?? 999);
  const { seconds, by, owners } = whereSeconds(file, hz, process.argv.includes('--agent') ? AGENT_LABELS : new Map());
  console.log(`| category | CPU s | share |\n|---|---|---|`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${v.toFixed(2)} | ${((100 * v) / seconds).toFixed(1)} % |`);
  console.log(`| **total** | **${seconds.toFixed(2)}** | |`);
  if (process.argv.includes('--owners')) {
    console.log(`\n| category | innermost JavaScript function | CPU s |\n|---|---|---|`);
    for (const [k, v] of [...owners].sort((a, b) => b[1] - a[1])) if (v >= 0.01) console.log(`| ${k.replace('\t', ' | ')} | ${v.toFixed(2)} |`);
  }
}
