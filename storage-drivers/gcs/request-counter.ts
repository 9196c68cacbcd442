/**
 * Counts every HTTP request sent to an open GCS driver's endpoint, retries made inside the SDK
 * included, by watching Node's `http.client.request.start` diagnostics channel (the SDK sends
 * through node:http via node-fetch and gaxios). One subscription per process; a request to a
 * host:port that several drivers share is counted once.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { countRequest } from '../request-stats.js';
import { gcsRequestKind } from './request-kind.js';

const CHANNEL = 'http.client.request.start';
const hosts = new Map<string, number>();

function onRequest(message: unknown): void {
  const request = (message as { request?: ClientRequest }).request;
  if (!request) return;
  const host = request.getHeader('host');
  if (typeof host !== 'string' || !hosts.has(host.toLowerCase())) return;
  const range = request.getHeader('content-range');
  countRequest(gcsRequestKind(request.method, request.path, typeof range === 'string' ? range : undefined));
}

/** Start counting requests to `endpoint`'s host; returns the function that stops it. */
export function countRequestsTo(endpoint: string): () => void {
  const u = new URL(endpoint);
  // The Host header omits the default port.
  const host = u.host.toLowerCase();
  if (hosts.size === 0) subscribe(CHANNEL, onRequest);
  hosts.set(host, (hosts.get(host) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const n = (hosts.get(host) ?? 1) - 1;
    if (n > 0) hosts.set(host, n);
    else hosts.delete(host);
    if (hosts.size === 0) unsubscribe(CHANNEL, onRequest);
  };
}
