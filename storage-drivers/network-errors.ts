/**
 * Network failure codes where a retry may help (pure): the one list the drivers share. Node's
 * socket and DNS errors, undici's socket error and a stream closed before its end. Each driver
 * adds its SDK's own codes (withNetworkCodes); what is transient on a local disk is a different
 * list (fs/errors.ts).
 */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** TRANSIENT_NETWORK_CODES and a driver's own. */
export function withNetworkCodes(...extra: string[]): ReadonlySet<string> {
  return new Set([...TRANSIENT_NETWORK_CODES, ...extra]);
}
