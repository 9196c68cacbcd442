// CPU time of a command by category from a `perf record` file (kernel and native code included,
// unlike node --cpu-prof, and only while running: descheduled time is not counted).
//
//   perf record -F 1999 -o /tmp/x.data -- node bin/pgark.js restore ...
//   node bench/perf-summary.mjs /tmp/x.data [hz]      # markdown table, seconds = samples / hz
import { execFileSync } from 'node:child_process';

const RULES = [
  ['hash (sha256 / sha1)', /sha256|sha1_|SHA1|SHA256/],
  ['lz4 block decode (native)', /lz4/i],
  ['kernel: copy into the page cache (write)', /\[k\] (copy_folio_from_iter|copy_page_from_iter)/],
  ['kernel: ext4 / page cache / block I/O', /\[k\] .*(ext4|filemap|folio|jbd2|_block|bio_|blk|writeback|xa_|mpage|submit|iomap|virtio|iowrite|dquot|find_inode_bit|recently_deleted)/],
  ['kernel: page faults, mmap', /\[k\] .*(fault|clear_page|anonymous|unmap|tlb|pte|pmd|vma|mmap|lru|memcg|mas_|zap)/],
  ['kernel: scheduling, wake-ups, interrupts', /\[k\] .*(switch|sched|futex|spin|irq|wake|enqueue|dequeue|update_curr|idle|hrtimer|tick|rcu)/],
  ['kernel: other (syscall entry, VFS)', /\[k\]/],
  ['user memmove / memset', /memmove|memcpy|memset/],
  ['malloc / free', /malloc|_int_free|cfree|tcache|arena/],
  ['V8: compile, parse, snapshot (startup)', /compiler::|Scanner|Parser|Deserializer|Compile|Bytecode|Interpreter|[Mm]aglev|Snapshot/],
  ['V8: garbage collection', /Heap|Scaveng|Mark|Sweep|Evacuat|GC/],
  ['JS (builtins and JIT code)', /Builtins_|\[JIT\]/],
  ['node / V8 / libuv runtime, other', /node|v8|uv_/],
  ['other', /./],
];

const [file, hzArg] = process.argv.slice(2);
const hz = Number(hzArg ?? 1999);
const out = execFileSync('perf', ['report', '-i', file, '--no-children', '--sort', 'dso,sym', '--stdio', '-F', 'sample,dso,sym'], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20, stdio: ['ignore', 'pipe', 'ignore'] });
const by = new Map();
let total = 0;
for (const line of out.split('\n')) {
  const m = /^\s+(\d+)\s+(.*)$/.exec(line);
  if (!m || line.startsWith('#')) continue;
  const n = Number(m[1]);
  total += n;
  const cat = RULES.find(([, re]) => re.test(m[2]))[0];
  by.set(cat, (by.get(cat) ?? 0) + n);
}
console.log(`${total} samples at ${hz} Hz = ${(total / hz).toFixed(2)} s CPU\n\n| category | CPU s | share |\n|---|---|---|`);
for (const [cat, n] of [...by].sort((a, b) => b[1] - a[1])) console.log(`| ${cat} | ${(n / hz).toFixed(2)} | ${((100 * n) / total).toFixed(1)} % |`);
