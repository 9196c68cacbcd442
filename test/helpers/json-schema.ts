/**
 * Validate a command's `--json` output against its documented JSON Schema
 * (docs/json-schema/pgark.<thing>.1.json, rendered into docs/JSON.md). Tests validate strictly:
 * an object with documented properties may hold no other (the published schemas allow added
 * fields, which version 1 permits; the test makes sure every field pgark prints is documented).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { JSON_FORMATS } from '../../src/json/format.js';

export const SCHEMA_DIR = join(import.meta.dirname, '..', '..', 'docs', 'json-schema');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The schema with `additionalProperties: false` wherever properties are listed and nothing else is said. */
export function strictSchema(s: Json): Json {
  if (Array.isArray(s)) return s.map(strictSchema);
  if (s === null || typeof s !== 'object') return s;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(s)) out[k] = k === 'const' || k === 'enum' ? v : strictSchema(v);
  if (out.properties && typeof out.properties === 'object' && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

export function loadSchemas(strict: boolean): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json'))) {
    const s = JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as Json;
    ajv.addSchema((strict ? strictSchema(s) : s) as object);
  }
  return ajv;
}

let strictAjv: Ajv2020 | undefined;

function validatorOf(thing: string): ValidateFunction {
  strictAjv ??= loadSchemas(true);
  const v = strictAjv.getSchema(`pgark.${thing}.1.json`);
  if (!v) throw new Error(`no schema docs/json-schema/pgark.${thing}.1.json`);
  return v;
}

/** Parse `stdout` as the `--json` output of format `pgark.<thing>/1` and validate it; returns it. */
export function expectJsonFormat<T = Record<string, unknown>>(stdout: string, thing: string): T {
  const v = JSON.parse(stdout) as { format?: unknown };
  expect(v.format).toBe(`pgark.${thing}/1`);
  const validate = validatorOf(thing);
  const ok = validate(v);
  if (!ok) throw new Error(`output does not match docs/json-schema/pgark.${thing}.1.json:\n${JSON.stringify(validate.errors, null, 2)}\noutput: ${stdout.slice(0, 4000)}`);
  return v as T;
}

/** The format name of a command's --json output (`['sets', 'list']` -> 'sets-list'). */
export function formatOfCommand(words: readonly string[]): string {
  for (const n of [2, 1]) {
    const key = words.slice(0, n).join(' ');
    if (key in JSON_FORMATS) return JSON_FORMATS[key as keyof typeof JSON_FORMATS];
  }
  throw new Error(`no --json format for '${words.join(' ')}'`);
}
