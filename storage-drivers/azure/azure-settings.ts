/**
 * Driver settings of the azure driver (pure). Values arrive as strings keyed by setting name;
 * a missing key means unset, so the schema defaults are applied here too.
 */
import { ConfigError } from '../../src/common/errors.js';

export interface AzureSettings {
  /** `azure-endpoint`: blob service URL override, or undefined. */
  endpoint: string | undefined;
  /** `azure-block-size` in bytes (setting in MiB, default 8). */
  blockSize: number;
  /** `storage-timeout` in ms (setting in seconds, default 60). */
  timeoutMs: number;
}

const MiB = 1024 * 1024;

/** Azure's limit for one staged block (and this driver's single-request upload). */
export const MAX_BLOCK_MIB = 4000;

function intSetting(settings: Record<string, string>, key: string, dflt: number, min: number, max: number): number {
  const raw = settings[key];
  if (raw === undefined || raw.trim() === '') return dflt;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`invalid '${key}' setting '${raw}': expected an integer`);
  const n = Number(raw.trim());
  if (n < min || n > max) throw new ConfigError(`invalid '${key}' setting ${n}: expected ${min}..${max}`);
  return n;
}

export function parseAzureSettings(settings: Record<string, string> = {}): AzureSettings {
  const endpoint = settings['azure-endpoint']?.trim();
  return {
    endpoint: endpoint ? endpoint : undefined,
    blockSize: intSetting(settings, 'azure-block-size', 8, 1, MAX_BLOCK_MIB) * MiB,
    timeoutMs: intSetting(settings, 'storage-timeout', 60, 1, 3600) * 1000,
  };
}
