/**
 * The HTTP agent of one azure driver: keep-alive connections that close() can release, a
 * no-progress timeout on every connection, and a request count by kind.
 *
 * The SDK's `tryTimeoutInMs` only sets the service-side `timeout=` parameter; nothing in the
 * SDK aborts a connection that stalls. So each socket gets an idle timeout of `storage-timeout`:
 * when no byte moves in either direction for that long while a request is in progress
 * (connecting, sending, waiting for the answer or receiving it), the socket is destroyed with
 * ETIMEDOUT, which the SDK retries and the driver reports as a transient error. A response body
 * that is idle because its consumer stopped reading (the stream is paused by backpressure) is not
 * a stall: the timer is simply re-armed.
 */
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { countRequest, type RequestKind } from '../request-stats.js';

export interface AgentOptions {
  protocol: 'http:' | 'https:';
  /** No-progress timeout in ms. */
  idleMs: number;
  maxSockets?: number;
}

/** Kind of an Azure Blob REST request, for request-stats. */
export function requestKind(method: string, path: string): RequestKind {
  const q = path.includes('?') ? new URLSearchParams(path.slice(path.indexOf('?') + 1)) : new URLSearchParams();
  const comp = q.get('comp');
  switch (method.toUpperCase()) {
    case 'HEAD':
      return 'head';
    case 'GET':
      if (comp === 'list') return 'list';
      return comp ? 'other' : 'get';
    case 'PUT':
      // Put Blob and Put Block carry data; Put Block List completes an upload like S3's
      // CompleteMultipartUpload.
      if (comp === null || comp === 'block') return q.get('restype') ? 'other' : 'put';
      return 'other';
    case 'DELETE':
      return 'delete';
    default:
      return 'other';
  }
}

type AddRequest = (req: ClientRequest, options: http.RequestOptions) => void;

/** Create the agent. `destroy()` on it closes every connection. */
export function createAgent(o: AgentOptions): http.Agent {
  const agentOptions = { keepAlive: true, maxSockets: o.maxSockets ?? 32, maxFreeSockets: 8, scheduling: 'lifo' as const };
  const agent = o.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const responses = new WeakMap<Socket, IncomingMessage>();
  const watched = new WeakSet<Socket>();

  const watch = (socket: Socket): void => {
    socket.setTimeout(o.idleMs);
    if (watched.has(socket)) return;
    watched.add(socket);
    socket.on('timeout', () => {
      const res = responses.get(socket);
      // The consumer is not reading (the response or the socket is paused, or holds bytes
      // nobody took yet): backpressure, not the store's fault.
      if (res && !res.complete && !res.destroyed && (res.isPaused() || res.readableLength > 0 || socket.isPaused() || socket.readableLength > 0)) {
        socket.setTimeout(o.idleMs);
        return;
      }
      const err = Object.assign(new Error(`no progress for ${o.idleMs / 1000} s`), { code: 'ETIMEDOUT' });
      socket.destroy(err);
    });
  };

  const target = agent as unknown as { addRequest: AddRequest };
  const base = target.addRequest.bind(agent);
  target.addRequest = (req, options) => {
    countRequest(requestKind(req.method, req.path));
    req.once('socket', (socket: Socket) => {
      responses.delete(socket);
      watch(socket);
    });
    req.once('response', (res: IncomingMessage) => {
      if (req.socket) responses.set(req.socket, res);
    });
    base(req, options);
  };
  // An idle pooled connection needs no timer (the agent's own free-socket handling applies).
  agent.on('free', (socket: Socket) => {
    responses.delete(socket);
    socket.setTimeout(0);
  });
  return agent;
}
