import { ErrorCode, ToolDbError } from "../base/errors.js";
import { MAX_PEER_URL_LENGTH } from "../records/messages.js";

export { MAX_PEER_URL_LENGTH };

const UNSPECIFIED = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * Whether `url` is something a browser can dial for a server: `ws://` or
 * `wss://`, a concrete host (not 0.0.0.0 or ::), no credentials.
 */
export function isDialableWsUrl(url: string): boolean {
  if (url.length > MAX_PEER_URL_LENGTH) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (u.protocol === "ws:" || u.protocol === "wss:") && !UNSPECIFIED.has(u.hostname) && u.username === "" && u.password === "" && u.hash === "";
}

/** Throws a clear error unless `url` is a dialable ws:// or wss:// URL. */
export function checkPublicUrl(url: string): string {
  if (!isDialableWsUrl(url)) {
    throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `public URL must be ws:// or wss:// with a concrete host (no 0.0.0.0, no credentials), got "${url.slice(0, 80)}"`);
  }
  return url;
}

/**
 * The URL a browser dials for a server record: the signed `url` when the
 * server gave one, else ws://host:port when its host is concrete.
 */
export function recordUrl(record: { host: string; port: number; url?: string }): string | undefined {
  if (record.url !== undefined) return isDialableWsUrl(record.url) ? record.url : undefined;
  if (UNSPECIFIED.has(record.host) || record.port === 0) return undefined;
  const url = `ws://${record.host.includes(":") ? `[${record.host}]` : record.host}:${record.port}`;
  return isDialableWsUrl(url) ? url : undefined;
}

/** host and port to dial for a ws(s) URL (default ports 80 and 443). */
export function urlEndpoint(url: string): { host: string; port: number; secure: boolean } {
  const u = new URL(url);
  const secure = u.protocol === "wss:";
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port ? Number(u.port) : secure ? 443 : 80, secure };
}
