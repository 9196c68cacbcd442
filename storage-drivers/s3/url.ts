/**
 * `s3://bucket/prefix` parsing (pure, no SDK). The prefix is optional; object keys are
 * `<prefix>/<key>`. Credentials never go in the URL (they come from the AWS credential chain),
 * and the endpoint of an S3-compatible store is the `s3-endpoint` setting, not the URL host.
 */
import { ConfigError } from '../../src/common/errors.js';

export interface S3Location {
  bucket: string;
  /** '' or a '/'-free-at-both-ends prefix such as 'pg/main'. */
  prefix: string;
}

/**
 * AWS's current bucket rules are stricter (3-63 lowercase characters); legacy buckets and
 * S3-compatible stores accept upper case and '_', so only what can never be a bucket is refused.
 */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

export function parseS3Url(url: URL): S3Location {
  const shown = `s3://${url.hostname}${url.pathname}`;
  if (url.protocol !== 's3:') throw new ConfigError(`unsupported repository scheme '${url.protocol}' for the s3 driver`);
  if (url.username || url.password) {
    throw new ConfigError(
      `invalid repository '${shown}': credentials do not belong in the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the credentials file`,
    );
  }
  if (url.port) {
    throw new ConfigError(`invalid repository 's3://${url.host}${url.pathname}': the URL names a bucket, not a server; put the server in s3-endpoint (e.g. http://host:${url.port})`);
  }
  if (url.search || url.hash) throw new ConfigError(`invalid repository '${shown}': query strings and fragments are not supported; use settings such as s3-region`);
  const bucket = url.hostname;
  if (!bucket) throw new ConfigError(`invalid repository '${shown}': expected s3://bucket[/prefix]`);
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) throw new ConfigError(`invalid repository '${shown}': '${bucket}' is not a valid bucket name`);
  return { bucket, prefix: parsePrefix(url.pathname, shown) };
}

function parsePrefix(pathname: string, shown: string): string {
  const path = pathname.replace(/^\//, '').replace(/\/$/, '');
  if (path === '') return '';
  const segments = path.split('/').map((seg) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      throw new ConfigError(`invalid repository '${shown}': bad percent-encoding in the prefix`);
    }
    if (decoded === '' || decoded === '.' || decoded === '..' || /[\\\0/]/.test(decoded)) {
      throw new ConfigError(`invalid repository '${shown}': the prefix has an empty, '.', '..' or invalid segment`);
    }
    return decoded;
  });
  const prefix = segments.join('/');
  if (prefix.length > 512) throw new ConfigError(`invalid repository '${shown}': the prefix is too long`);
  return prefix;
}

/** Display form: `s3://bucket/prefix` (never a secret: the URL cannot carry one). */
export function formatS3Location(loc: S3Location): string {
  return loc.prefix ? `s3://${loc.bucket}/${loc.prefix}` : `s3://${loc.bucket}`;
}

/** Repository key -> S3 object key. */
export function objectKey(loc: S3Location, key: string): string {
  return loc.prefix ? `${loc.prefix}/${key}` : key;
}

/** S3 object key -> repository key, or null when the object is not under the prefix. */
export function repoKey(loc: S3Location, s3Key: string): string | null {
  if (!loc.prefix) return s3Key;
  return s3Key.startsWith(`${loc.prefix}/`) ? s3Key.slice(loc.prefix.length + 1) : null;
}
