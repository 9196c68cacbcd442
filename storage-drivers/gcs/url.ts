/**
 * `gs://bucket/prefix` repository URLs (pure parsing, no I/O). The prefix is optional; keys are
 * stored as `<prefix>/<key>`.
 */
import { ConfigError } from '../../src/common/errors.js';

export interface GcsLocation {
  bucket: string;
  /** '' or a prefix ending in '/', prepended to every key. */
  prefix: string;
  /** `gs://bucket/prefix`, for messages (holds no secret: credentials never go in the URL). */
  display: string;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Why `name` is not a valid bucket name (Cloud Storage naming rules: 3-63 characters of
 * lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit; up to
 * 222 with dots, each dot-separated part at most 63; not an IP address; no "goog" prefix), or
 * null when it is valid.
 */
export function bucketNameProblem(name: string): string | null {
  if (name === '') return 'the bucket name is empty';
  if (/[A-Z]/.test(name)) return 'bucket names are lowercase';
  if (!/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(name)) {
    return "a bucket name has lowercase letters, digits, '-', '_' and '.', and starts and ends with a letter or digit";
  }
  const max = name.includes('.') ? 222 : 63;
  if (name.length < 3 || name.length > max) return `a bucket name has 3 to ${max} characters`;
  if (name.split('.').some((p) => p.length === 0 || p.length > 63)) return 'each dot-separated part of a bucket name has 1 to 63 characters';
  if (IPV4.test(name)) return 'a bucket name cannot be an IP address';
  if (name.startsWith('goog')) return "a bucket name cannot start with 'goog'";
  return null;
}

export function parseGcsUrl(url: URL): GcsLocation {
  const shown = `gs://${url.host}${url.pathname}`;
  if (url.protocol !== 'gs:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the gcs driver`);
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(`invalid repository '${shown}': credentials do not belong in a gs:// URL (use Application Default Credentials)`);
  }
  if (url.port !== '') throw new ConfigError(`invalid repository '${shown}': a gs:// URL has no port (set gcs-endpoint for another server)`);
  if (url.search !== '' || url.hash !== '') throw new ConfigError(`invalid repository '${shown}': a gs:// URL has no query or fragment`);
  const bucket = url.hostname;
  const problem = bucketNameProblem(bucket);
  if (problem) throw new ConfigError(`invalid repository '${shown}': ${problem} (expected gs://bucket/prefix)`);

  let segments: string[];
  try {
    segments = url.pathname.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw new ConfigError(`invalid repository '${shown}': bad percent-encoding in the prefix`);
  }
  // Leading '/' gives a first empty segment; one trailing '/' is allowed. Decoded %2F splits too.
  segments = segments.slice(1).join('/').split('/');
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || s.includes('\\') || s.includes('\0')) {
      throw new ConfigError(`invalid repository '${shown}': the prefix has an empty, '.' or '..' segment or a forbidden character`);
    }
  }
  const path = segments.join('/');
  if (path.length > 512) throw new ConfigError(`invalid repository '${shown}': the prefix is too long`);
  return { bucket, prefix: path === '' ? '' : `${path}/`, display: path === '' ? `gs://${bucket}` : `gs://${bucket}/${path}` };
}
