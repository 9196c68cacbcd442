// "Where each second goes" (issue 17 item 1) from a `perf record -g` file: every sample is put in
// one category by its whole call chain (kernel and user frames, JIT frames named by
// `node --perf-basic-prof`), so a system call counts as what it does for pgark (read, write,
// fsync, open/close) and not as the kernel function it happened to be in.
//
//   perf record -F 999 -g -o /tmp/x.data -- node --perf-basic-prof bin/pgark.js restore ...
//   node bench/perf-where.mjs /tmp/x.data [hz] [--md]     # seconds = samples / hz
//
// Only CPU time is sampled (descheduled time is not), unlike `node --cpu-prof` on a loaded
// machine. The first matching rule wins; the order matters (GC before JS, hash before copy).
import { execFileSync } from 'node:child_process';

/** [category, test(frames: string[] leaf first, comm)] */
const RULES = [
  ['GC', (f) => f.some((s) => /Heap::|Scavenge|MarkCompact|Sweeper|ConcurrentMarking|GCTracer|MinorMS|ArrayBufferSweeper/.test(s))],
  ['hash + verify (sha256)', (f) => f.some((s) => /sha256|SHA256|sha1_block|Hash(Update|Digest)|crypto::Hash/.test(s))],
  ['decompress (lz4)', (f) => f.some((s) => /decodeLz4Block|lz4/i.test(s))],
  // backup's page checksums: WebAssembly (src/backup/page-checksum-wasm.ts, export "verify") or the JS fallback
  ['page checksum', (f) => f.some((s) => /page-checksum|pageChecksum|checksumPage|wasm-function|Function:verify|\bverify-0\b/.test(s))],
  // the agent's checks of WAL pages (headers, zeroed tails) before it stores a segment (src/wal/segment-check.ts)
  ['WAL page checks (JS)', (f) => f.some((s) => /wal\/segment-check/.test(s))],
  ['messaging (thread wake-ups, postMessage, eventfd)', (f) => f.some((s) => /MessagePort|postMessage|eventfd|uv_async_send|futex|sys_epoll/.test(s))],
  ['read (repository files)', (f) => f.some((s) => /sys_pread64|sys_read\b|ksys_read|sys_preadv/.test(s))],
  ['write (data directory)', (f) => f.some((s) => /sys_pwrite64|sys_write\b|ksys_write|sys_writev|sys_pwritev/.test(s))],
  ['fsync', (f) => f.some((s) => /sys_fsync|sys_fdatasync|ext4_sync_file|jbd2/.test(s))],
  ['open / close / chmod / utimes / stat / mkdir', (f) => f.some((s) => /sys_openat|sys_close|sys_unlink|sys_fchmod|sys_utimensat|sys_statx|sys_newfstatat|sys_newlstat|sys_newfstat|sys_mkdir|sys_rename|sys_getdents|sys_fstatfs|sys_readlink|sys_lstat|sys_access/.test(s))],
  ['JIT: optimising compilers (TurboFan, Maglev)', (f) => f.some((s) => /compiler::|maglev::|Maglev|TurboFan|OptimizedCompilationJob|baseline::|BaselineBatchCompiler/.test(s))],
  ['startup (exec, dynamic loading, snapshot, parse, bytecode, module loading)', (f) => f.some((s) => /_dl_|dl_main|sys_execve|Deserializ|Parser::|ParseProgram|ParseFunction|Compiler::Compile|compileSourceTextModule|compileForInternalLoader|internal\/modules|internal\/bootstrap|BytecodeGenerator|Snapshot|InitializeOncePerProcess|RunBootstrapping|BootstrapRealm/.test(s))],
  // restore's and backup's manifests (parse, build, write): pgark's JS under src/catalog/
  ['manifests and catalog (JS)', (f) => f.some((s) => /dist\/src\/catalog\//.test(s))],
  ['memory (page faults, mmap, munmap)', (f) => f.some((s) => /asm_exc_page_fault|sys_mmap|sys_munmap|sys_madvise|sys_brk|sys_mprotect/.test(s))],
  ['copy (user memmove / memcpy / memset)', (f) => /memmove|memcpy|memset/.test(f[0] ?? '')],
  ['malloc / free', (f) => /malloc|_int_free|cfree|tcache|arena|free\b/.test(f[0] ?? '')],
  ['scheduling (context switches)', (f) => f.some((s) => /schedule|finish_task_switch|__switch_to|sched_/.test(s))],
  ['kernel other', (f) => /\[kernel/.test(f[0] ?? '')],
  ['JS: restore loop, frame parsing, promises (JIT and builtins)', (f) => /^JS:|Builtins_|\[JIT\]|perf-\d+\.map/.test(f[0] ?? '')],
  ['runtime other (node, V8, libuv)', () => true],
];

export function categorise(frames) {
  for (const [name, test] of RULES) if (test(frames)) return name;
  return 'runtime other (node, V8, libuv)';
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
  const by = new Map();
  let samples = 0;
  for (const block of out.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) continue;
    const frames = lines.slice(1).map((l) => l.trim().replace(/^[0-9a-f]+ /, ''));
    const cat0 = categorise(frames);
    const cat = labels.get(cat0) ?? cat0;
    by.set(cat, (by.get(cat) ?? 0) + 1);
    samples++;
  }
  return { seconds: samples / hz, by: new Map([...by].map(([k, v]) => [k, v / hz])) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, hzArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const hz = Number(hzArg ?? 999);
  const { seconds, by } = whereSeconds(file, hz, process.argv.includes('--agent') ? AGENT_LABELS : new Map());
  console.log(`| category | CPU s | share |\n|---|---|---|`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${v.toFixed(2)} | ${((100 * v) / seconds).toFixed(1)} % |`);
  console.log(`| **total** | **${seconds.toFixed(2)}** | |`);
}
