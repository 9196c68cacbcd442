import { describe, expect, it } from 'vitest';
import { AlreadyExistsError, InvalidInputError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { azureError, classifyAzureError, errorFacts, redactText, type ErrorContext } from '../../storage-drivers/azure/azure-errors.js';

/** A stand-in for the SDK's RestError (read by duck typing). */
function restError(statusCode: number | undefined, code?: string, message = 'service said no', header?: string): Error {
  const err = new Error(message) as Error & Record<string, unknown>;
  err.name = 'RestError';
  if (statusCode !== undefined) err.statusCode = statusCode;
  if (code !== undefined) err.code = code;
  if (header !== undefined) err.response = { headers: { get: (n: string) => (n === 'x-ms-error-code' ? header : undefined) } };
  return err;
}

function abortError(): Error {
  const err = new Error('The operation was aborted.');
  err.name = 'AbortError';
  return err;
}

const SECRET = 'c2VjcmV0LWtleS1ieXRlcw==';
const ctx = (verb: string): ErrorContext => ({
  verb,
  key: 'wal/000000010000000000000001',
  location: 'azure://acct/cont/pg',
  container: 'cont',
  account: 'acct',
  credentialSource: 'AZURE_STORAGE_KEY',
  secrets: [SECRET],
  timeoutMs: 60_000,
});

describe('classifyAzureError', () => {
  it.each([
    [restError(404, 'BlobNotFound'), 'notFound'],
    [restError(404, undefined, 'x', 'BlobNotFound'), 'notFound'],
    [restError(404), 'notFound'],
    [restError(404, 'ContainerNotFound'), 'containerMissing'],
    [restError(404, undefined, 'x', 'ContainerNotFound'), 'containerMissing'],
    [restError(409, 'BlobAlreadyExists'), 'exists'],
    [restError(412, 'ConditionNotMet'), 'exists'],
    [restError(412, 'LeaseIdMissing'), 'permanent'],
    [restError(416, 'InvalidRange'), 'range'],
    [restError(403, 'AuthenticationFailed'), 'auth'],
    [restError(403, 'AuthorizationPermissionMismatch'), 'auth'],
    [restError(401), 'auth'],
    [restError(500, 'InternalError'), 'transient'],
    [restError(503, 'ServerBusy'), 'transient'],
    [restError(502), 'transient'],
    [restError(429), 'transient'],
    [restError(408), 'transient'],
    [restError(400, 'InvalidBlockList'), 'transient'],
    [restError(500, 'OperationTimedOut'), 'transient'],
    [restError(400, 'InvalidHeaderValue'), 'permanent'],
    [restError(409, 'ContainerBeingDeleted'), 'permanent'],
    [restError(undefined, 'ECONNRESET'), 'transient'],
    [restError(undefined, 'REQUEST_SEND_ERROR'), 'transient'],
    [new Error('Data corruption failure: received less data than required'), 'transient'],
    [abortError(), 'abort'],
  ] as const)('%#: %s -> %s', (err, kind) => {
    expect(classifyAzureError(err)).toBe(kind);
  });

  it('reads the service code from the header when the body had none', () => {
    expect(errorFacts(restError(404, undefined, 'x', 'ContainerNotFound'))).toMatchObject({ status: 404, code: 'ContainerNotFound' });
    expect(errorFacts('a string')).toMatchObject({ status: undefined, message: 'a string' });
  });
});

describe('azureError', () => {
  it('maps a missing blob to NotFoundError on read and stat only', () => {
    expect(azureError(restError(404, 'BlobNotFound'), ctx('read'), false)).toBeInstanceOf(NotFoundError);
    expect(azureError(restError(404, 'BlobNotFound'), ctx('stat'), false)).toBeInstanceOf(NotFoundError);
    expect(azureError(restError(404, 'BlobNotFound'), ctx('write'), false)).toBeInstanceOf(StorageError);
  });

  it('maps a failed conditional write to AlreadyExistsError', () => {
    const err = azureError(restError(409, 'BlobAlreadyExists'), ctx('write'), false);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as AlreadyExistsError).path).toBe('wal/000000010000000000000001');
  });

  it('reports a missing container as a non-transient error with a hint, never as NotFoundError', () => {
    const err = azureError(restError(404, 'ContainerNotFound'), ctx('read'), false) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err.transient).toBe(false);
    expect(err.message).toBe(
      "unable to read 'wal/000000010000000000000001' from azure://acct/cont/pg: 404 ContainerNotFound (container 'cont' does not exist in account 'acct'; create it first, e.g. az storage container create --name cont)",
    );
  });

  it('reports authentication failures as non-transient with a hint naming the variable', () => {
    const err = azureError(restError(403, 'AuthenticationFailed', `Signature did not match. String to sign used was ${SECRET}`), ctx('write'), false) as StorageError;
    expect(err.transient).toBe(false);
    expect(err.message).toMatch(/^unable to write 'wal\/000000010000000000000001' to azure:\/\/acct\/cont\/pg: 403 AuthenticationFailed \(authentication failed: check the credential in AZURE_STORAGE_KEY/);
    expect(err.message).not.toContain(SECRET);
    const perm = azureError(restError(403, 'AuthorizationPermissionMismatch'), ctx('delete'), false);
    expect(perm.message).toMatch(/not allowed to delete here/);
    const generic = azureError(restError(403, 'AuthorizationFailure'), ctx('list'), false);
    expect(generic.message).toMatch(/^unable to list '.*' in azure:\/\/acct\/cont\/pg: 403 AuthorizationFailure \(access denied/);
  });

  it('makes 5xx, throttling and network errors transient', () => {
    for (const e of [restError(503, 'ServerBusy'), restError(500), restError(undefined, 'ECONNRESET')]) {
      const err = azureError(e, ctx('read'), false) as StorageError;
      expect(err).toBeInstanceOf(StorageError);
      expect(err.transient).toBe(true);
    }
    expect(azureError(restError(503, 'ServerBusy'), ctx('read'), false).message).toMatch(/: 503 ServerBusy$/);
    expect(azureError(restError(undefined, 'ECONNRESET', 'socket hang up'), ctx('read'), false).message).toMatch(/: ECONNRESET$/);
  });

  it('describes the no-progress timeout', () => {
    const e = restError(undefined, 'ETIMEDOUT', 'no progress for 2 s');
    expect(azureError(e, { ...ctx('read'), timeoutMs: 2000 }, false).message).toMatch(/: no progress for 2 s \(ETIMEDOUT\)$/);
  });

  it('passes the caller\'s abort through, and treats any other AbortError as a dropped connection', () => {
    const a = abortError();
    expect(azureError(a, ctx('write'), true)).toBe(a);
    const dropped = azureError(a, ctx('read'), false) as StorageError;
    expect(dropped).toBeInstanceOf(StorageError);
    expect(dropped.transient).toBe(true);
    expect(dropped.message).toMatch(/connection closed before the response was complete/);
  });

  it('passes pgark errors through', () => {
    const e = new InvalidInputError('bad');
    expect(azureError(e, ctx('read'), false)).toBe(e);
  });

  it('never shows URL queries or secrets from an SDK message', () => {
    const e = restError(undefined, 'REQUEST_SEND_ERROR', `connect to http://127.0.0.1:1/acct/cont/x?sv=1&sig=abc%2Fdef failed (key ${SECRET})`);
    const m = azureError(e, ctx('read'), false).message;
    expect(m).not.toContain('sig=abc');
    expect(m).not.toContain(SECRET);
    expect(m).toMatch(/request failed: connect to http:\/\/127\.0\.0\.1:1\/acct\/cont\/x\?\*\*\* failed/);
  });
});

describe('redactText', () => {
  it('removes secrets and URL queries', () => {
    expect(redactText(`a ${SECRET} b https://h/p?sig=x&y=1 c`, [SECRET])).toBe('a *** b https://h/p?*** c');
    expect(redactText('short ab', ['ab'])).toBe('short ab');
  });
});
