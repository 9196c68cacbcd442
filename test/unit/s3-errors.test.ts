import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AlreadyExistsError, StorageError } from '../../src/common/errors.js';
import {
  errorCodeOf,
  httpStatusOf,
  isConditionalConflict,
  isInvalidRange,
  isNoSuchBucket,
  isNotFound,
  isPreconditionFailed,
  isTransientS3Error,
  s3Error,
} from '../../storage-drivers/s3/errors.js';

/** What the AWS SDK throws for an S3 error response (name = S3 error code). */
function serviceError(status: number, code: string, message = 'message from the server'): Error {
  return Object.assign(new Error(message), {
    name: code,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'REQ', attempts: 3 },
    // The raw response the SDK keeps: it must never reach a message.
    $response: { statusCode: status, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/x, Signature=deadbeef' } },
  });
}

function networkError(code: string, message = `connect ${code} 127.0.0.1:9000`): Error {
  return Object.assign(new Error(message), { code });
}

const ctx = { verb: 'read' as const, key: 'main/wal/000000010000000000000001', location: 's3://bucket/pg', timeoutMs: 60_000 };

describe('s3 error classification', () => {
  it.each([
    [serviceError(503, 'SlowDown'), '503 SlowDown'],
    [serviceError(500, 'InternalError'), '500 InternalError'],
    [serviceError(500, 'Unknown'), 'HTTP 500'],
    [serviceError(502, 'BadGateway'), '502 BadGateway'],
    [serviceError(429, 'TooManyRequestsException'), '429 TooManyRequestsException'],
    [serviceError(400, 'RequestTimeout'), '400 RequestTimeout'],
    [serviceError(409, 'OperationAborted'), '409 OperationAborted'],
    [serviceError(404, 'NoSuchUpload'), '404 NoSuchUpload'],
    [networkError('ECONNRESET', 'read ECONNRESET'), 'ECONNRESET'],
    [networkError('ECONNREFUSED'), 'ECONNREFUSED'],
    [networkError('EPIPE'), 'EPIPE'],
    [networkError('EAI_AGAIN'), 'EAI_AGAIN'],
    [Object.assign(new Error('socket timed out after 60000 ms'), { name: 'TimeoutError' }), 'timed out: no progress for 60 s (storage-timeout)'],
    [networkError('ETIMEDOUT'), 'timed out: no progress for 60 s (storage-timeout)'],
  ])('%s is transient: %s', (err, detail) => {
    const e = s3Error(ctx, err);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).transient).toBe(true);
    expect((e as StorageError).driver).toBe('s3');
    expect(e.message).toBe(`unable to read '${ctx.key}' from s3://bucket/pg: ${detail}`);
  });

  it.each([
    [serviceError(403, 'SignatureDoesNotMatch'), /403 SignatureDoesNotMatch \(the secret access key does not match/],
    [serviceError(403, 'InvalidAccessKeyId'), /403 InvalidAccessKeyId \(the access key id is unknown/],
    [serviceError(403, 'AccessDenied'), /403 AccessDenied \(access denied: check the credentials and that the bucket policy/],
    [serviceError(403, 'Forbidden'), /403 Forbidden \(access denied/],
    [serviceError(400, 'ExpiredToken'), /400 ExpiredToken \(the session token has expired/],
    [serviceError(403, 'RequestTimeTooSkewed'), /RequestTimeTooSkewed \(the local clock/],
    [serviceError(404, 'NoSuchBucket'), /404 NoSuchBucket \(the bucket does not exist: check the repository URL, s3-endpoint and s3-region\)/],
    [serviceError(301, 'PermanentRedirect'), /301 PermanentRedirect \(the bucket is in another region/],
    [serviceError(301, 'Unknown'), /HTTP 301 \(the bucket is in another region/],
    [serviceError(400, 'AuthorizationHeaderMalformed'), /set s3-region to the bucket's region/],
    [serviceError(403, 'InvalidObjectState'), /the object is archived/],
    [serviceError(501, 'NotImplemented'), /501 NotImplemented \(the store does not implement this request \(a store without conditional writes needs s3-put-if-absent = head\)\)/],
    [serviceError(400, 'InvalidArgument'), /^unable to read '.*' from s3:\/\/bucket\/pg: 400 InvalidArgument$/],
    [Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), /CredentialsProviderError \(no AWS credentials found/],
    [networkError('ENOTFOUND', 'getaddrinfo ENOTFOUND bucket.s3.example.com'), /ENOTFOUND \(the store's host name does not resolve/],
  ])('%s is not transient and says what to fix', (err, message) => {
    const e = s3Error(ctx, err);
    expect(e).toBeInstanceOf(StorageError);
    expect((e as StorageError).transient).toBe(false);
    expect(e.message).toMatch(message);
  });

  it('uses the verb and preposition of the operation', () => {
    const err = serviceError(503, 'SlowDown');
    expect(s3Error({ ...ctx, verb: 'write' }, err).message).toMatch(/^unable to write '.*' to s3:/);
    expect(s3Error({ ...ctx, verb: 'stat' }, err).message).toMatch(/^unable to stat '.*' in s3:/);
    expect(s3Error({ ...ctx, verb: 'list', key: 'main/wal/' }, err).message).toMatch(/^unable to list 'main\/wal\/' in s3:/);
    expect(s3Error({ ...ctx, verb: 'delete' }, err).message).toMatch(/^unable to delete '.*' from s3:/);
  });

  it('never copies the SDK message or raw response into the error or its cause', () => {
    const err = serviceError(403, 'SignatureDoesNotMatch', 'StringToSign AWS4-HMAC-SHA256 secret-looking-text');
    const e = s3Error(ctx, err);
    const text = `${e.message}\n${inspect(e, { depth: 5 })}\n${JSON.stringify(e)}`;
    expect(text).not.toContain('secret-looking-text');
    expect(text).not.toContain('deadbeef');
    expect(text).not.toContain('AKIAEXAMPLE');
    expect(text).not.toMatch(/Signature=|Credential=/);
    expect((e.cause as Error).message).toBe('403 SignatureDoesNotMatch');
  });

  it('passes pgark errors and aborts through unchanged', () => {
    const exists = new AlreadyExistsError('k');
    expect(s3Error(ctx, exists)).toBe(exists);
    const abort = Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    expect(s3Error(ctx, abort)).toBe(abort);
  });

  it('recognises the responses the driver handles itself', () => {
    expect(isNotFound(serviceError(404, 'NoSuchKey'))).toBe(true);
    expect(isNotFound(serviceError(404, 'NotFound'))).toBe(true);
    expect(isNotFound(serviceError(404, 'NoSuchBucket'))).toBe(false);
    expect(isNoSuchBucket(serviceError(404, 'NoSuchBucket'))).toBe(true);
    expect(isPreconditionFailed(serviceError(412, 'PreconditionFailed'))).toBe(true);
    expect(isPreconditionFailed(serviceError(409, 'ConditionalRequestConflict'))).toBe(false);
    expect(isConditionalConflict(serviceError(409, 'ConditionalRequestConflict'))).toBe(true);
    expect(isConditionalConflict(serviceError(409, 'OperationAborted'))).toBe(false);
    expect(isInvalidRange(serviceError(416, 'InvalidRange'))).toBe(true);
    expect(isInvalidRange(serviceError(404, 'NoSuchKey'))).toBe(false);
    expect(httpStatusOf(serviceError(503, 'SlowDown'))).toBe(503);
    expect(httpStatusOf(new Error('x'))).toBeUndefined();
    expect(errorCodeOf(networkError('ECONNRESET'))).toBe('ECONNRESET');
    expect(errorCodeOf(new Error('plain'))).toBeUndefined();
    expect(isTransientS3Error('not an error')).toBe(false);
    expect(isTransientS3Error(new TypeError('a bug'))).toBe(false);
    expect(isTransientS3Error(new Error('socket hang up'))).toBe(true);
  });
});
