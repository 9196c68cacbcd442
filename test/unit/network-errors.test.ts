/**
 * One list of transient network codes (storage-drivers/network-errors.ts): every driver that
 * classifies by error code calls each of them transient. Before the list was shared, GCS called
 * EHOSTDOWN permanent and the SSH connect path ESOCKETTIMEDOUT / UND_ERR_SOCKET /
 * ERR_STREAM_PREMATURE_CLOSE permanent.
 */
import { describe, expect, it } from 'vitest';
import { TRANSIENT_NETWORK_CODES } from '../../storage-drivers/network-errors.js';
import { isTransientGcsError } from '../../storage-drivers/gcs/errors.js';
import { isTransientS3Error } from '../../storage-drivers/s3/errors.js';
import { connectFailure } from '../../storage-drivers/ssh/errors.js';

const codeError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });

describe('transient network codes', () => {
  it.each([...TRANSIENT_NETWORK_CODES])('%s is transient for gcs, s3 and the ssh connect path', (code) => {
    expect(isTransientGcsError(codeError(code))).toBe(true);
    expect(isTransientS3Error(codeError(code))).toBe(true);
    expect(connectFailure(codeError(code)).transient).toBe(true);
  });

  it.each(['ENOENT', 'EACCES', 'EINVAL', 'ERR_INVALID_ARG_TYPE'])('%s is not transient on the ssh connect path', (code) => {
    expect(connectFailure(codeError(code)).transient).toBe(false);
  });
});
