/**
 * The s3 driver's settings (pure, no SDK). The config layer passes resolved values as strings;
 * a missing key means unset, so the schema defaults (src/config/schema.ts) are applied here too
 * for drivers constructed directly.
 */
import { ConfigError } from '../../src/common/errors.js';

export type PutIfAbsentMode = 'if-none-match' | 'head';
export type ChecksumMode = 'when-required' | 'when-supported';
export type SseMode = 'AES256' | 'aws:kms' | 'aws:kms:dsse';

export interface S3Settings {
  endpoint: string | undefined;
  region: string | undefined;
  /** A profile of the AWS shared credentials/config files (its secrets stay in those files). */
  profile: string | undefined;
  pathStyle: boolean;
  storageClass: string | undefined;
  sse: SseMode | undefined;
  sseKmsKeyId: string | undefined;
  checksum: ChecksumMode;
  putIfAbsent: PutIfAbsentMode;
  /** Bytes. */
  partSize: number;
  /** Milliseconds without progress before a request is abandoned. */
  timeoutMs: number;
}

const MiB = 1024 * 1024;

export function resolveS3Settings(raw: Record<string, string> = {}): S3Settings {
  const get = (key: string): string | undefined => {
    const v = raw[key];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const sse = oneOf(get('s3-sse'), 's3-sse', ['AES256', 'aws:kms', 'aws:kms:dsse'] as const, undefined);
  const sseKmsKeyId = get('s3-sse-kms-key-id');
  if (sseKmsKeyId !== undefined && sse !== 'aws:kms' && sse !== 'aws:kms:dsse') {
    throw new ConfigError(`s3-sse-kms-key-id needs s3-sse = aws:kms or aws:kms:dsse (got ${sse ?? 'unset'})`);
  }
  const storageClass = get('s3-storage-class');
  if (storageClass !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(storageClass)) {
    throw new ConfigError(`invalid s3-storage-class '${storageClass}': expected a name such as STANDARD_IA`);
  }
  const region = get('s3-region');
  if (region !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(region)) throw new ConfigError(`invalid s3-region '${region}'`);
  const profile = get('s3-profile');
  if (profile !== undefined && !/^[A-Za-z0-9_.+@-]{1,128}$/.test(profile)) throw new ConfigError('invalid s3-profile: expected the name of a profile of the AWS credentials file');
  return {
    endpoint: parseEndpoint(get('s3-endpoint')),
    region,
    profile,
    pathStyle: bool(get('s3-path-style'), 's3-path-style', false),
    storageClass,
    sse,
    sseKmsKeyId,
    checksum: oneOf(get('s3-checksum'), 's3-checksum', ['when-required', 'when-supported'] as const, 'when-required'),
    putIfAbsent: oneOf(get('s3-put-if-absent'), 's3-put-if-absent', ['if-none-match', 'head'] as const, 'if-none-match'),
    partSize: int(get('s3-part-size'), 's3-part-size', 16, 5, 512) * MiB,
    timeoutMs: int(get('storage-timeout'), 'storage-timeout', 60, 1, 3600) * 1000,
  };
}

function parseEndpoint(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`invalid s3-endpoint: expected a URL such as https://s3.example.com or http://127.0.0.1:9000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`invalid s3-endpoint: the scheme must be http or https`);
  // Credentials come from the AWS credential chain, never from a setting that may be logged.
  if (url.username || url.password) throw new ConfigError('invalid s3-endpoint: credentials do not belong in the endpoint URL');
  if (url.search || url.hash) throw new ConfigError('invalid s3-endpoint: query strings and fragments are not supported');
  return url.href.replace(/\/$/, '');
}

function oneOf<T extends string, D extends T | undefined>(value: string | undefined, key: string, values: readonly T[], dflt: D): T | D {
  if (value === undefined) return dflt;
  const found = values.find((v) => v.toLowerCase() === value.toLowerCase());
  if (found === undefined) throw new ConfigError(`invalid ${key} '${value}': expected one of ${values.join(', ')}`);
  return found;
}

function bool(value: string | undefined, key: string, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new ConfigError(`invalid ${key} '${value}': expected true or false`);
}

function int(value: string | undefined, key: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  if (!/^\d+$/.test(value)) throw new ConfigError(`invalid ${key} '${value}': expected an integer`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`invalid ${key} ${n}: expected ${min} to ${max}`);
  return n;
}
