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
const RULES = [
  ['(idle)', (f) => f === '(idle)' || f === '(program)' && false],
  ['GC', (f) => f === '(garbage collector)'],
  ['hash (sha256)', (f, u) => /^(update|digest)$/.test(f) && (u === 'node:internal/crypto/hash' || u === '')],
  // decodeBlock's self time is lz4-napi's native block decoder (a native call has no frame of its own)
  ['decompress (lz4 block decode, native)', (f, u) => /uncompress|decompress/i.test(f) && !/lz4-frame-decoder/.test(u) || /lz4-napi|codecs\/lz4\.js/.test(u)],
  ['lz4 frame parsing (JS)', (f, u) => /lz4-frame-decoder|xxhash32/.test(u)],
  ['write (fs)', (f) => /^(write|writev|writeBuffer|writeBuffers|pwrite)$/i.test(f)],
  ['fsync', (f) => /^(fsync|sync|fdatasync)$/i.test(f)],
  ['read (fs)', (f, u) => /^(read|readBuffer)$/i.test(f) || /streams\/readable|fs\/streams/.test(u) && /read/i.test(f)],
  ['copy (Buffer.concat / copy)', (f, u) => /^(concat|copy|_copy|_copyActual|from|allocUnsafe|allocUnsafeSlow|createUnsafeBuffer)$/.test(f) && /buffer/.test(u)],
  ['messaging (postMessage, worker)', (f, u) => /postMessage|onmessage|emitMessage|MessagePort/i.test(f) || /worker|messageport|worker-pool/.test(u)],
  ['streams machinery', (f, u) => /internal\/streams|node:stream|internal\/webstreams/.test(u)],
  ['promises / async glue', (f, u) => /processTicksAndRejections|runMicrotasks|(^|\s)await/.test(f) || /internal\/process\/task_queues|internal\/fs\/promises/.test(u)],
  ['restore worker (JS)', (f, u) => /restore-worker|private-file|restore\/plan/.test(u)],
  ['object stream (JS)', (f, u) => /object-stream|object-format/.test(u)],
  ['startup / module loading', (f, u) => /internal\/modules|node:internal\/main|loader/.test(u) || f === '(program)'],
  ['pgark other (JS)', (f, u) => /\/dist\/|pgark/.test(u)],
  ['node internals other', (f, u) => /^node:/.test(u)],
  ['native / other', () => true],
];

function categorise(fn, url) {
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
