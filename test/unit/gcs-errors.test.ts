import { ApiError } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { AlreadyExistsError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { gcsError, inspectGcsError, isTransientGcsError, scrubMessage, type ErrorContext } from '../../storage-drivers/gcs/errors.js';

const ctx: ErrorContext = { verb: 'read', key: 'main/wal/x', location: 'gs://b/p', bucket: 'b', timeoutMs: 60_000 };
const SECRET = 'upload_id=SECRETSESSION123';

/** What the JSON API returns, as the SDK turns it into an ApiError. */
function apiError(code: number, reason: string, message: string): ApiError {
  return new ApiError({ code, message, errors: [{ reason, message, domain: 'global' }] } as never);
}
const body = (code: number, reason: string, message: string) => JSON.stringify({ error: { code, message, errors: [{ message, domain: 'global', reason }] } });

describe('inspectGcsError', () => {
  it('reads status, reason and message from an ApiError', () => {
    expect(inspectGcsError(apiError(404, 'notFound', 'No such object: b/p/main/wal/x'))).toMatchObject({ status: 404, reason: 'notFound', apiMessage: 'No such object: b/p/main/wal/x' });
  });

  it('reads a download error whose message is the response body', () => {
    const err = Object.assign(new Error(body(404, 'notFound', 'The specified bucket does not exist.')), { code: 404, errors: [] });
    expect(inspectGcsError(err)).toMatchObject({ status: 404, reason: 'notFound', apiMessage: 'The specified bucket does not exist.' });
  });

  it('reads a GaxiosError of the resumable uploader', () => {
    const err = Object.assign(new Error(`Request failed with status code 412 at http://x/upload?${SECRET}`), {
      response: { status: 412, data: JSON.parse(body(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.')) },
      status: 412,
    });
    expect(inspectGcsError(err)).toMatchObject({ status: 412, reason: 'conditionNotMet' });
  });

  it('reads the plain error object a resumable upload is destroyed with', () => {
    expect(inspectGcsError({ code: 412, message: 'At least one...', errors: [{ reason: 'conditionNotMet' }] })).toMatchObject({ status: 412, reason: 'conditionNotMet' });
  });

  it("reads 'Retry limit exceeded' errors", () => {
    expect(inspectGcsError(new Error('Retry limit exceeded - status: 503 - response: {}'))).toMatchObject({ status: 503, retriesExhausted: true });
    const net = inspectGcsError(new Error('Retry limit exceeded - request to http://x failed - code: ECONNRESET'));
    expect(net).toMatchObject({ code: 'ECONNRESET', retriesExhausted: true });
  });

  it('reads transport errors and timeouts', () => {
    expect(inspectGcsError(Object.assign(new Error(`network timeout at: http://x/?${SECRET}`), { type: 'request-timeout' }))).toMatchObject({ timeout: true });
    expect(inspectGcsError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', type: 'system' }))).toMatchObject({ code: 'ECONNRESET' });
    expect(inspectGcsError(new Error('socket hang up'))).toMatchObject({ code: 'ECONNRESET' });
    // The resumable uploader reports a connection error as a reason.
    expect(inspectGcsError({ code: undefined, errors: [{ reason: 'ECONNRESET' }] })).toMatchObject({ code: 'ECONNRESET' });
  });

  it('recognises missing credentials', () => {
    expect(inspectGcsError(new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.'))).toMatchObject({ noCredentials: true });
  });
});

describe('isTransientGcsError', () => {
  it.each([
    [apiError(503, 'backendError', 'x'), true],
    [apiError(500, 'backendError', 'x'), true],
    [apiError(429, 'rateLimitExceeded', 'x'), true],
    [apiError(408, 'requestTimeout', 'x'), true],
    [apiError(403, 'rateLimitExceeded', 'x'), true],
    [apiError(401, 'authError', 'x'), false],
    [apiError(403, 'forbidden', 'x'), false],
    [apiError(404, 'notFound', 'x'), false],
    [apiError(412, 'conditionNotMet', 'x'), false],
    [apiError(400, 'invalid', 'x'), false],
    [Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('x'), { code: 'ENOTFOUND' }), false],
    [Object.assign(new Error('network timeout at: http://x'), { type: 'request-timeout' }), true],
    [new Error('Retry limit exceeded - Unknown Error'), true],
    [new RangeError('The offset is lower than the number of bytes written. The server has 0 bytes ...'), true],
    [new Error('Could not load the default credentials.'), false],
    [new Error('something else'), false],
  ])('%s -> %s', (err, transient) => {
    expect(isTransientGcsError(err)).toBe(transient);
  });
});

describe('gcsError', () => {
  it('passes pgark errors and aborts through', () => {
    const nf = new NotFoundError('k');
    expect(gcsError(nf, ctx)).toBe(nf);
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    expect(gcsError(abort, ctx)).toBe(abort);
  });

  it('maps an object 404 to NotFoundError only where asked, and a bucket 404 never', () => {
    expect(gcsError(apiError(404, 'notFound', 'No such object: b/p/main/wal/x'), ctx, { notFound: true })).toBeInstanceOf(NotFoundError);
    const bucket = gcsError(apiError(404, 'notFound', 'The specified bucket does not exist.'), ctx, { notFound: true });
    expect(bucket).toBeInstanceOf(StorageError);
    expect((bucket as StorageError).transient).toBe(false);
    expect(bucket.message).toBe("unable to read 'main/wal/x' from gs://b/p: 404 notFound: bucket 'b' does not exist");
  });

  it('maps 412 of put-if-absent to AlreadyExistsError', () => {
    expect(gcsError(apiError(412, 'conditionNotMet', 'x'), { ...ctx, verb: 'write' }, { ifAbsent: true })).toBeInstanceOf(AlreadyExistsError);
    expect(gcsError(apiError(412, 'conditionNotMet', 'x'), { ...ctx, verb: 'write' })).toBeInstanceOf(StorageError);
  });

  it('builds messages from the operation, key, status and reason, never from the SDK message', () => {
    const err = Object.assign(new Error(`Request failed for http://127.0.0.1/upload?${SECRET} Authorization: Bearer ya29.secret`), { code: 503, errors: [{ reason: 'backendError' }] });
    const mapped = gcsError(err, { ...ctx, verb: 'write' });
    expect(mapped.message).toBe("unable to write 'main/wal/x' to gs://b/p: 503 backendError (service unavailable)");
    expect((mapped as StorageError).transient).toBe(true);
    expect(mapped.cause).toBeUndefined();
    expect(String(mapped.stack)).not.toContain('SECRET');
  });

  it('explains timeouts, auth failures, permissions and missing credentials', () => {
    expect(gcsError(Object.assign(new Error(`network timeout at http://x?${SECRET}`), { type: 'request-timeout' }), ctx).message).toBe(
      "unable to read 'main/wal/x' from gs://b/p: no response within 60 s (storage-timeout)",
    );
    expect(gcsError(apiError(401, 'authError', 'Invalid Credentials'), { ...ctx, verb: 'list', key: 'main/' }).message).toMatch(
      /^unable to list 'main\/\*' in gs:\/\/b\/p: 401 authError: authentication failed/,
    );
    const denied = gcsError(apiError(403, 'forbidden', 'svc@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission \'storage.objects.create\' denied on resource (or it may not exist).'), ctx);
    expect(denied.message).toMatch(/403 forbidden: permission denied on bucket 'b' \(svc@p.iam.gserviceaccount.com does not have storage.objects.create access/);
    expect((denied as StorageError).transient).toBe(false);
    const none = gcsError(new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs for more information.'), ctx);
    expect(none.message).toMatch(/no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS/);
    expect((none as StorageError).transient).toBe(false);
  });

  it('names a session that lost acknowledged bytes', () => {
    const err = gcsError(new RangeError('The offset is lower than the number of bytes written. The server has 0 bytes and while 5 bytes has been uploaded'), { ...ctx, verb: 'write' });
    expect(err.message).toBe("unable to write 'main/wal/x' to gs://b/p: the upload session lost bytes it had acknowledged");
    expect((err as StorageError).transient).toBe(true);
  });

  it('scrubs URLs and tokens from server messages it shows', () => {
    expect(scrubMessage(`see https://x/y?${SECRET} Bearer ya29.abc-def token=zzz`)).toBe('see <url> Bearer *** token=***');
  });
});
