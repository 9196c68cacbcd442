/**
 * The import-direction rule of docs/ARCHITECTURE.md, checked over source text (pure).
 *
 * A room is a folder under src/ (`src/wal/...` -> `wal`), a file directly under src/ by its
 * name (`src/version.ts` -> `version`), `storage-drivers` (the whole tree) and `bin` (the top
 * line; its imports of `dist/src/x` count as imports of `src/x`). The layer
 * order is the one fenced ```layers block of ARCHITECTURE.md: one layer a line, the highest
 * first, rooms of one layer separated by `|`. A module may import its own room and rooms on
 * lower lines; an import of a higher layer or of another room on the same line is a violation.
 * Inside storage-drivers, a driver folder (`storage-drivers/<driver>/`) imports no other driver.
 */
import { posix } from 'node:path';

export interface SourceFile {
  /** Path relative to the repository root, with `/`. */
  path: string;
  text: string;
}

export interface ImportRef {
  /** The specifier as written; for a template-literal import, its static prefix. */
  spec: string;
  kind: 'static' | 'side-effect' | 'dynamic' | 'dynamic-template' | 'require' | 'url' | 'cjs-path';
  line: number;
}

export interface Violation {
  from: string;
  /** The imported path, relative to the repository root (the prefix for a template import). */
  to: string;
  fromRoom: string;
  toRoom: string;
  why: 'upward' | 'same layer' | 'other driver' | 'outside the layers';
  line: number;
}

/** Reads the one ```layers block: highest layer first. Throws unless there is exactly one. */
export function parseLayers(markdown: string): string[][] {
  const blocks = [...markdown.matchAll(/^```layers[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)];
  if (blocks.length !== 1) throw new Error(`expected exactly one \`\`\`layers block in ARCHITECTURE.md, found ${blocks.length}`);
  const layers = blocks[0]![1]!
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '')
    .map((l) => l.split('|').map((r) => r.trim()));
  const seen = new Set<string>();
  for (const room of layers.flat()) {
    if (!/^[a-z][a-z0-9-]*$/.test(room)) throw new Error(`bad room name '${room}' in the layers block`);
    if (seen.has(room)) throw new Error(`room '${room}' is named twice in the layers block`);
    seen.add(room);
  }
  return layers;
}

/**
 * The text with comments replaced by spaces (newlines kept, so line numbers hold); strings,
 * template literals and regular expression literals are kept as they are.
 */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  let lastSignificant = '';
  const n = text.length;
  const regexAllowedAfter = /[(,=:[!&|?{};+\-*%<>~^]$|^$|\b(?:return|typeof|case|do|else|in|of|void|yield|await|delete|throw|new)$/;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < n && text[i] !== '\n') {
        out += ' ';
        i++;
      }
      continue;
    }
    if (c === '/' && next === '*') {
      out += '  ';
      i += 2;
      while (i < n && !(text[i] === '*' && text[i + 1] === '/')) {
        out += text[i] === '\n' ? '\n' : ' ';
        i++;
      }
      out += i < n ? '  ' : '';
      i += 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      const start = i;
      i++;
      while (i < n && text[i] !== c) {
        if (text[i] === '\\') i++;
        else if (c !== '`' && text[i] === '\n') break;
        i++;
      }
      i++;
      out += text.slice(start, i);
      lastSignificant = c;
      continue;
    }
    if (c === '/' && regexAllowedAfter.test(lastSignificant)) {
      const start = i;
      i++;
      let inClass = false;
      while (i < n && text[i] !== '\n') {
        if (text[i] === '\\') i++;
        else if (text[i] === '[') inClass = true;
        else if (text[i] === ']') inClass = false;
        else if (text[i] === '/' && !inClass) break;
        i++;
      }
      i++;
      out += text.slice(start, i);
      lastSignificant = '/';
      continue;
    }
    out += c;
    if (!/\s/.test(c)) {
      // Keep the current word (for return/typeof...) or the punctuation mark.
      lastSignificant = /[\w$]/.test(c) ? (/[\w$]$/.test(lastSignificant) ? lastSignificant + c : c) : c;
    }
    i++;
  }
  return out;
}

/**
 * Every import of a module in the text: static and type imports, export-from, side-effect,
 * dynamic; `require('x')` and `createRequire(...)('x')` (CommonJS loads); `new URL('x',
 * import.meta.url)` (worker scripts, files found next to a module); any string naming a relative
 * `.cjs` path (a place a module is required from).
 */
export function importsOf(text: string): ImportRef[] {
  const code = stripComments(text);
  const lineAt = (index: number) => code.slice(0, index).split('\n').length;
  const refs: ImportRef[] = [];
  const patterns: Array<[RegExp, ImportRef['kind']]> = [
    [/(?:^|[;}\n])[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*(['"])([^'"\n]+)\1/g, 'static'],
    [/(?:^|[;}\n])[ \t]*import\s*(['"])([^'"\n]+)\1/g, 'side-effect'],
    [/(?<![\w$.])import\s*\(\s*(['"])([^'"\n]+)\1/g, 'dynamic'],
    [/(?<![\w$.])import\s*\(\s*(`)([^`$]*)/g, 'dynamic-template'],
    [/(?<![\w$.])require\s*\(\s*(['"])([^'"\n]+)\1/g, 'require'],
    [/(?<![\w$.])createRequire\s*\([^()]*\)\s*\(\s*(['"])([^'"\n]+)\1/g, 'require'],
    [/(?<![\w$.])new\s+URL\s*\(\s*(['"])([^'"\n]+)\1\s*,\s*import\.meta\.url\b/g, 'url'],
    // A relative path to a CommonJS module written anywhere (e.g. a list of places to require
    // from): nothing but a load names one.
    [/(['"])(\.\.?\/[^'"\n]*\.cjs)\1/g, 'cjs-path'],
  ];
  const seen = new Set<number>();
  for (const [re, kind] of patterns) {
    for (const m of code.matchAll(re)) {
      const end = m.index! + m[0].length;
      if (seen.has(end)) continue; // a load already read by an earlier pattern
      seen.add(end);
      refs.push({ spec: m[2]!, kind, line: lineAt(end) });
    }
  }
  return refs.sort((a, b) => a.line - b.line);
}

/** The room of a repository path, or undefined outside src/, storage-drivers/ and bin/. */
export function roomOf(path: string): string | undefined {
  const parts = path.split('/');
  if (parts[0] === 'storage-drivers' || parts[0] === 'bin') return parts[0];
  if (parts[0] !== 'src' || parts.length < 2) return undefined;
  if (parts.length === 2) return parts[1]!.replace(/\.[^.]+$/, '');
  return parts[1];
}

/** The driver folder of a storage-drivers path (`storage-drivers/ssh/x.ts` -> `ssh`), if any. */
function driverOf(path: string): string | undefined {
  const parts = path.split('/');
  return parts[0] === 'storage-drivers' && parts.length > 2 ? parts[1] : undefined;
}

export function findViolations(files: readonly SourceFile[], layers: readonly (readonly string[])[]): Violation[] {
  const rank = new Map<string, number>();
  layers.forEach((rooms, i) => rooms.forEach((r) => rank.set(r, layers.length - i)));
  const out: Violation[] = [];
  for (const file of files) {
    const fromRoom = roomOf(file.path);
    if (fromRoom === undefined) throw new Error(`${file.path} is not in a room (src/<room>/, storage-drivers/, bin/)`);
    for (const ref of importsOf(file.text)) {
      if (!ref.spec.startsWith('.')) continue; // node: builtins and packages
      // bin/pgark.js loads the compiled tree: dist/src/x is the module src/x.
      const to = posix.normalize(posix.join(posix.dirname(file.path), ref.spec)).replace(/^dist\//, '');
      const toRoom = roomOf(to) ?? '(none)';
      const base = { from: file.path, to, fromRoom, toRoom, line: ref.line };
      if (toRoom === fromRoom) {
        const a = driverOf(file.path);
        const b = driverOf(to);
        if (a !== undefined && b !== undefined && a !== b) out.push({ ...base, why: 'other driver' });
        continue;
      }
      const rf = rank.get(fromRoom);
      const rt = rank.get(toRoom);
      if (rf === undefined || rt === undefined) out.push({ ...base, why: 'outside the layers' });
      else if (rt > rf) out.push({ ...base, why: 'upward' });
      else if (rt === rf) out.push({ ...base, why: 'same layer' });
    }
  }
  return out;
}

export function formatViolation(v: Violation): string {
  return `${v.from}:${v.line} imports ${v.to} (${v.fromRoom} -> ${v.toRoom}: ${v.why})`;
}

/** The module names of ARCHITECTURE.md's sentence `Pure modules (`a`, `b`, ...) do no I/O.` */
export function parsePureModules(markdown: string): string[] {
  const m = /Pure modules \(([^)]*)\)\s+do no I\/O/.exec(markdown);
  if (!m) throw new Error('ARCHITECTURE.md states no "Pure modules (...) do no I/O" sentence');
  return [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!);
}

/** Modules that do I/O: a pure module imports none of them (not even for a type). */
const IO_MODULES = /^(node:)?(fs|fs\/promises|net|tls|http|https|http2|child_process|dgram|dns|worker_threads)$|^(pg|ssh2|lz4-napi|@aws-sdk\/.*|@azure\/.*|@google-cloud\/.*)$/;

/** The I/O modules a file imports directly. */
export function ioImportsOf(text: string): string[] {
  return importsOf(text).map((r) => r.spec).filter((s) => IO_MODULES.test(s));
}
