/**
 * Which kind of request (storage-drivers/request-stats.ts) a GCS JSON API request is, from its
 * method, path and Content-Range (pure).
 *
 *   GET  .../o/NAME?alt=media, GET /download/...   get
 *   GET  .../o/NAME                                head (object metadata)
 *   GET  .../b/BUCKET/o                            list
 *   POST /upload/...?uploadType=media|multipart    put (a whole object in one request)
 *   POST /upload/...?uploadType=resumable          other (starts a session)
 *   PUT  <session URI> with data                   put (one chunk)
 *   PUT  <session URI>, Content-Range bytes * /..  other (status query)
 *   DELETE <session URI>                           other (cancels the session)
 *   DELETE .../o/NAME                              delete
 */
import type { RequestKind } from '../request-stats.js';

export function gcsRequestKind(method: string, pathAndQuery: string, contentRange?: string): RequestKind {
  const q = pathAndQuery.indexOf('?');
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : pathAndQuery.slice(q + 1));
  const m = method.toUpperCase();
  const session = params.has('upload_id');
  if (path.startsWith('/upload/')) {
    if (session) {
      if (m === 'DELETE') return 'other';
      return contentRange !== undefined && /^bytes \*\//.test(contentRange.trim()) ? 'other' : 'put';
    }
    if (m === 'POST') return params.get('uploadType') === 'resumable' ? 'other' : 'put';
    return 'other';
  }
  if (m === 'GET') {
    if (path.startsWith('/download/') || params.get('alt') === 'media') return 'get';
    if (/\/b\/[^/]+\/o$/.test(path)) return 'list';
    if (/\/b\/[^/]+\/o\/.+/.test(path)) return 'head';
    return 'other';
  }
  if (m === 'DELETE' && /\/b\/[^/]+\/o\/.+/.test(path)) return 'delete';
  return 'other';
}
