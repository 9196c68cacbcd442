/**
 * Cancelling a resumable upload session: `DELETE <session URI>` (Google answers 499). The
 * session URI authorizes the upload by itself, so no credentials are sent. Best effort: an
 * unfinished session never becomes an object and expires after a week anyway.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export async function cancelSession(sessionUri: string, timeoutMs: number): Promise<boolean> {
  let url: URL;
  try {
    url = new URL(sessionUri);
  } catch {
    return false;
  }
  const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
  if (!send) return false;
  return new Promise<boolean>((resolve) => {
    const req = send(url, { method: 'DELETE', headers: { 'Content-Length': '0' }, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 499 || (res.statusCode ?? 0) < 300 || res.statusCode === 404 || res.statusCode === 410));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

export interface SessionStatus {
  state: 'finalized' | 'incomplete' | 'unknown';
  /** The stored object's size, when finalized. */
  size?: number;
}

/**
 * Ask a resumable session how far it got (`PUT` with `Content-Range: bytes *\/*`): 200/201
 * with the object resource once its last chunk was committed, 308 while incomplete.
 */
export async function sessionStatus(sessionUri: string, timeoutMs: number): Promise<SessionStatus> {
  let url: URL;
  try {
    url = new URL(sessionUri);
  } catch {
    return { state: 'unknown' };
  }
  const send = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
  if (!send) return { state: 'unknown' };
  return new Promise<SessionStatus>((resolve) => {
    const req = send(url, { method: 'PUT', headers: { 'Content-Length': '0', 'Content-Range': 'bytes */*' }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        if ((length += c.length) <= 1024 * 1024) chunks.push(c);
      });
      res.on('error', () => resolve({ state: 'unknown' }));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status === 308) return resolve({ state: 'incomplete' });
        if (status !== 200 && status !== 201) return resolve({ state: 'unknown' });
        try {
          const size = Number((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { size?: string | number }).size);
          resolve(Number.isSafeInteger(size) ? { state: 'finalized', size } : { state: 'unknown' });
        } catch {
          resolve({ state: 'unknown' });
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ state: 'unknown' }));
    req.end();
  });
}
