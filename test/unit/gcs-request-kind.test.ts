import { request, createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { countRequestsTo } from '../../storage-drivers/gcs/request-counter.js';
import { gcsRequestKind } from '../../storage-drivers/gcs/request-kind.js';
import { requestCounts, resetRequestCounts } from '../../storage-drivers/request-stats.js';

describe('gcsRequestKind', () => {
  it.each([
    ['GET', '/storage/v1/b/bkt/o/a%2Fb?alt=media', undefined, 'get'],
    ['GET', '/download/storage/v1/b/bkt/o/a%2Fb?generation=1&alt=media', undefined, 'get'],
    ['GET', '/storage/v1/b/bkt/o/a%2Fb?fields=size', undefined, 'head'],
    ['GET', '/storage/v1/b/bkt/o?prefix=a%2F&maxResults=1000', undefined, 'list'],
    ['GET', '/storage/v1/b/bkt', undefined, 'other'],
    ['POST', '/upload/storage/v1/b/bkt/o?uploadType=multipart&name=a', undefined, 'put'],
    ['POST', '/upload/storage/v1/b/bkt/o?uploadType=media&name=a', undefined, 'put'],
    ['POST', '/upload/storage/v1/b/bkt/o?name=a&uploadType=resumable', undefined, 'other'],
    ['PUT', '/upload/storage/v1/b/bkt/o?uploadType=resumable&name=a&upload_id=X', 'bytes 0-262143/*', 'put'],
    ['PUT', '/upload/storage/v1/b/bkt/o?uploadType=resumable&name=a&upload_id=X', 'bytes */*', 'other'],
    ['PUT', '/upload/storage/v1/b/bkt/o?uploadType=resumable&name=a&upload_id=X', 'bytes */1000', 'other'],
    ['DELETE', '/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id=X', undefined, 'other'],
    ['DELETE', '/storage/v1/b/bkt/o/a%2Fb', undefined, 'delete'],
    ['PATCH', '/storage/v1/b/bkt/o/a', undefined, 'other'],
  ])('%s %s -> %s', (method, path, range, kind) => {
    expect(gcsRequestKind(method, path, range)).toBe(kind);
  });
});

describe('countRequestsTo', () => {
  it('counts requests to registered hosts until the last registration ends', async () => {
    const server = createServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const send = (path: string, host = `127.0.0.1:${port}`) =>
      new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, headers: { Host: host } }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    try {
      resetRequestCounts();
      const stopA = countRequestsTo(`http://127.0.0.1:${port}`);
      const stopB = countRequestsTo(`http://127.0.0.1:${port}/`);
      await send('/storage/v1/b/x/o/y?alt=media');
      await send('/storage/v1/b/x/o');
      await send('/storage/v1/b/x/o', `other:${port}`);
      expect(requestCounts()).toMatchObject({ get: 1, list: 1 });
      stopA();
      stopA();
      await send('/storage/v1/b/x/o/y');
      expect(requestCounts().head).toBe(1);
      stopB();
      await send('/storage/v1/b/x/o/y');
      expect(requestCounts()).toMatchObject({ get: 1, list: 1, head: 1 });
    } finally {
      server.close();
    }
  });
});
