/**
 * An attacker's listener: a raw WebSocket or TCP (stream framing) server
 * that answers every handshake ping with a frame the test chooses (e.g. a
 * pong captured from a real server) and records what it receives. It never
 * runs ToolDb: it only replays.
 */
import net from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { FrameDecoder, FrameKind, encodeFrame } from "../../src/network/stream-framing.js";
import type { Frame } from "./raw-peer.js";

export interface Impostor {
  readonly port: number;
  /** Every frame received, in order. */
  readonly received: Frame[];
  close(): Promise<void>;
}

type Answer = (ping: Frame) => Frame | undefined;

function parse(text: string): Frame | undefined {
  try {
    return JSON.parse(text) as Frame;
  } catch {
    return undefined;
  }
}

/** A WebSocket listener on 127.0.0.1 answering each ping with `answer(ping)`. */
export async function wsImpostor(answer: Answer): Promise<Impostor> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const received: Frame[] = [];
  const sockets = new Set<WebSocket>();
  wss.on("connection", (ws) => {
    sockets.add(ws);
    ws.on("error", () => undefined);
    ws.on("close", () => sockets.delete(ws));
    ws.on("message", (data) => {
      const frame = parse(String(data));
      if (!frame) return;
      received.push(frame);
      const reply = frame.type === "ping" ? answer(frame) : undefined;
      if (reply) ws.send(JSON.stringify(reply));
    });
  });
  return {
    port: (wss.address() as { port: number }).port,
    received,
    async close() {
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** A TCP listener on 127.0.0.1 speaking the stream framing, answering each ping with `answer(ping)` and heartbeats with pongs. */
export async function tcpImpostor(answer: Answer): Promise<Impostor> {
  const received: Frame[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (chunk) => {
      for (const { kind, payload } of decoder.push(chunk).frames) {
        if (kind === FrameKind.PING) socket.write(encodeFrame(FrameKind.PONG));
        if (kind !== FrameKind.MESSAGE) continue;
        const frame = parse(payload.toString("utf8"));
        if (!frame) continue;
        received.push(frame);
        const reply = frame.type === "ping" ? answer(frame) : undefined;
        if (reply) socket.write(encodeFrame(FrameKind.MESSAGE, Buffer.from(JSON.stringify(reply), "utf8")));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
