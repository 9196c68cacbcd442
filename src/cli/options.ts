/** Parsing of numeric command-line options (pure): a clear ConfigError for anything out of range. */
import { ConfigError } from '../common/errors.js';

/** An integer option from `min` to `max`, or undefined when not given. `name` is the flag, e.g. '--jobs'. */
export function intOption(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`invalid ${name} '${v}': expected an integer between ${min} and ${max}`);
  return Number(v);
}

/** A number option (decimals allowed) from `min` to `max`, or undefined when not given. */
export function numberOption(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(`invalid ${name} '${v}': expected a number between ${min} and ${max}`);
  return Number(v);
}

/** The argument parser of a repeatable option (`--x a --x b` -> ['a', 'b']); undefined when not given, so help shows no empty default. */
export const repeatable = (v: string, prev: string[] = []): string[] => [...prev, v];
