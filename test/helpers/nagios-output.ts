/**
 * A strict reader of monitoring-plugin output, as Nagios/Icinga (and check_nrpe, which passes it
 * on unchanged) take it, following the Monitoring Plugins Development Guidelines
 * (https://www.monitoring-plugins.org/doc/guidelines.html, "Plugin Output" and "Performance data"):
 *
 *   TEXT OUTPUT | OPTIONAL PERFDATA
 *   LONG TEXT LINE 1
 *   ...
 *   LONG TEXT LINE N | PERFDATA LINE 2
 *   PERFDATA LINE 3
 *
 * Performance data: a space-separated list of 'label'=value[UOM];[warn];[crit];[min];[max]:
 *  - the label may hold any character but '=' and "'"; the quotes are optional (required with a
 *    space); a quote inside a quoted label is written as two;
 *  - warn, crit, min and max may be empty, and trailing empty fields (with their ';') dropped;
 *  - value, min and max are in the class [-0-9.]; value may be the literal U (undeterminable);
 *  - warn and crit are in the threshold range format ([@][start:][end], start may be ~);
 *  - UOM: none (a number of things), s, ms, us, %, B, KB, MB, TB, c (a continuous counter).
 * Anything else is an error: the point is to fail where a monitoring system would misread.
 */

export interface ParsedPerfDatum {
  label: string;
  /** undefined for the literal U. */
  value: number | undefined;
  uom: string;
  warn?: string;
  crit?: string;
  min?: number;
  max?: number;
}

export interface PluginOutput {
  /** The first line before '|': what the monitoring system shows as the status. */
  text: string;
  perfdata: ParsedPerfDatum[];
  longOutput: string[];
}

const UOMS = new Set(['', 's', 'ms', 'us', '%', 'B', 'KB', 'MB', 'TB', 'c']);
const NUMBER = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const RANGE = /^@?(?:(?:~|-?[0-9.]+):)?(?:-?[0-9.]+)?$/;

function num(field: string, what: string): number {
  if (!NUMBER.test(field)) throw new Error(`perfdata: ${what} '${field}' is not in the class [-0-9.]`);
  return Number(field);
}

/** One perfdata string (the part after a '|'). */
export function parsePerfData(s: string): ParsedPerfDatum[] {
  const out: ParsedPerfDatum[] = [];
  let i = 0;
  const n = s.length;
  for (;;) {
    while (i < n && s[i] === ' ') i++;
    if (i >= n) return out;
    let label = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new Error(`perfdata: unterminated quoted label in '${s}'`);
        if (s[i] === "'") {
          if (s[i + 1] === "'") {
            label += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (s[i] === '=') throw new Error(`perfdata: '=' inside label in '${s}'`);
        label += s[i++];
      }
      if (s[i] !== '=') throw new Error(`perfdata: no '=' after label '${label}'`);
    } else {
      const eq = s.indexOf('=', i);
      const sp = s.indexOf(' ', i);
      if (eq < 0 || (sp >= 0 && sp < eq)) throw new Error(`perfdata: a label with a space must be quoted, or no '=' in '${s.slice(i)}'`);
      label = s.slice(i, eq);
      if (label.includes("'")) throw new Error(`perfdata: unquoted label '${label}' holds a quote`);
      i = eq;
    }
    if (label === '') throw new Error('perfdata: empty label');
    i++; // '='
    let end = s.indexOf(' ', i);
    if (end < 0) end = n;
    const fields = s.slice(i, end).split(';');
    i = end;
    if (fields.length > 5) throw new Error(`perfdata: '${label}' has ${fields.length} fields, at most 5`);
    const m = /^(U|-?[0-9.]+)([A-Za-z%]*)$/.exec(fields[0]!);
    if (!m) throw new Error(`perfdata: '${label}' has no valid value: '${fields[0]}'`);
    const uom = m[2]!;
    if (!UOMS.has(uom)) throw new Error(`perfdata: '${label}' has the unknown UOM '${uom}'`);
    const d: ParsedPerfDatum = { label, value: m[1] === 'U' ? undefined : num(m[1]!, 'value'), uom };
    const [, warn, crit, min, max] = fields;
    for (const [k, v] of [['warn', warn], ['crit', crit]] as const) {
      if (v === undefined || v === '') continue;
      if (!RANGE.test(v)) throw new Error(`perfdata: '${label}' ${k} '${v}' is not a threshold range`);
      d[k] = v;
    }
    if (min !== undefined && min !== '') d.min = num(min, 'min');
    if (max !== undefined && max !== '') d.max = num(max, 'max');
    out.push(d);
  }
}

/** The whole output of a plugin run (its stdout). */
export function parsePluginOutput(stdout: string): PluginOutput {
  const lines = stdout.replace(/\n$/, '').split('\n');
  const first = lines[0] ?? '';
  const bar = first.indexOf('|');
  const text = (bar < 0 ? first : first.slice(0, bar)).trimEnd();
  const perfdata = bar < 0 ? [] : parsePerfData(first.slice(bar + 1));
  const longOutput: string[] = [];
  let inPerf = false;
  for (const line of lines.slice(1)) {
    if (inPerf) {
      perfdata.push(...parsePerfData(line));
      continue;
    }
    const b = line.indexOf('|');
    if (b < 0) {
      longOutput.push(line);
      continue;
    }
    longOutput.push(line.slice(0, b).trimEnd());
    perfdata.push(...parsePerfData(line.slice(b + 1)));
    inPerf = true;
  }
  return { text, perfdata, longOutput };
}

/** The state a plugin's exit code means. */
export function pluginState(code: number): 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN' {
  return code === 0 ? 'OK' : code === 1 ? 'WARNING' : code === 2 ? 'CRITICAL' : 'UNKNOWN';
}
