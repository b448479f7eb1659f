import type { IncomingMessage } from "node:http";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * The answer to a request the link port will not upgrade, written on the raw
 * socket. `ws` writes its own (text/html, no `nosniff`) unless its server has
 * a `wsClientError` listener; ours is plain text with `nosniff`, like every
 * other answer of the HTTP fronts (limits/http-guard.ts). ws gives the reason
 * but not the status: a method other than GET is 405, anything else 400.
 */
export function refuseUpgrade(socket: Duplex, req: IncomingMessage, reason: string): void {
  const status = req.method === "GET" ? 400 : 405;
  const body = `${reason.slice(0, 200)}\n`;
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    "Connection: close",
    "Content-Type: text/plain; charset=utf-8",
    "X-Content-Type-Options: nosniff",
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  if (status === 400 && /Sec-WebSocket-Version/i.test(reason)) headers.push("Sec-WebSocket-Version: 13, 8");
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once("finish", () => socket.destroy());
  socket.once("error", () => socket.destroy());
  socket.end(`${headers.join("\r\n")}\r\n\r\n${body}`);
}
