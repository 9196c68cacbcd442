/**
 * GCS driver settings from DriverOptions.settings (resolved config: strings by key, absent when
 * unset) and the environment. Pure: no I/O, no SDK.
 */
import { ConfigError } from '../../src/common/errors.js';

const MiB = 1024 * 1024;
/** Resumable upload chunks must be multiples of 256 KiB (except the last). */
export const CHUNK_GRANULE = 256 * 1024;

export interface GcsSettings {
  /** API endpoint without a trailing '/', e.g. https://storage.googleapis.com. */
  endpoint: string;
  /** Whether the endpoint is not Google's default (gcs-endpoint or STORAGE_EMULATOR_HOST). */
  customEndpoint: boolean;
  /** Whether requests carry Google credentials (ADC). False for emulators. */
  authenticated: boolean;
  /** Bytes per resumable chunk; bodies up to this size go in one request. */
  chunkSize: number;
  /** Milliseconds a request may make no progress (storage-timeout). */
  timeoutMs: number;
}

export const DEFAULT_ENDPOINT = 'https://storage.googleapis.com';

function intSetting(settings: Record<string, string>, key: string, dflt: number, min: number, max: number): number {
  const raw = settings[key];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`invalid ${key} '${raw}': expected an integer from ${min} to ${max}`);
  return n;
}

/** Parse an endpoint URL; `defaultScheme` applies to a bare host[:port]. */
export function parseEndpoint(raw: string, what: string, defaultScheme: 'http' | 'https'): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${defaultScheme}://${raw}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError(`invalid ${what} '${raw}': expected a URL such as http://127.0.0.1:4443`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`invalid ${what} '${raw}': expected an http:// or https:// URL`);
  if (u.username || u.password || u.search || u.hash) throw new ConfigError(`invalid ${what}: no credentials, query or fragment in the endpoint URL`);
  // The JSON API lives under /storage/v1 and uploads under /upload/storage/v1 of the endpoint.
  const path = u.pathname.replace(/\/+$/, '').replace(/\/storage\/v1$/, '');
  return `${u.protocol}//${u.host}${path}`;
}

export function resolveGcsSettings(settings: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): GcsSettings {
  const chunkMiB = intSetting(settings, 'gcs-chunk-size', 16, 1, 1024);
  const chunkSize = Math.ceil((chunkMiB * MiB) / CHUNK_GRANULE) * CHUNK_GRANULE;
  const timeoutMs = intSetting(settings, 'storage-timeout', 60, 1, 3600) * 1000;

  const configured = settings['gcs-endpoint'];
  if (configured !== undefined && configured !== '') {
    const endpoint = parseEndpoint(configured, 'gcs-endpoint', 'https');
    // http:// is an emulator or test server; https:// (private endpoints, proxies) gets credentials.
    const authenticated = endpoint.startsWith('https:');
    return { endpoint, customEndpoint: endpoint !== DEFAULT_ENDPOINT, authenticated, chunkSize, timeoutMs };
  }
  const emulator = env.STORAGE_EMULATOR_HOST;
  if (emulator !== undefined && emulator !== '') {
    // As the Go and Python clients do: a bare host:port is plain HTTP, and emulators take no credentials.
    return { endpoint: parseEndpoint(emulator, 'STORAGE_EMULATOR_HOST', 'http'), customEndpoint: true, authenticated: false, chunkSize, timeoutMs };
  }
  return { endpoint: DEFAULT_ENDPOINT, customEndpoint: false, authenticated: true, chunkSize, timeoutMs };
}
