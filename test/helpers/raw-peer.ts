/**
 * Pieces for driving the ToolDb handshake by hand over a raw `ws` socket:
 * a fresh key pair, and a signed ping (optionally tampered with).
 */
import { WebSocket } from "ws";
import type { PeerRecord } from "../../src/core/messages.js";
import type { ToolDbRecord } from "../../src/core/record.js";
import { waitFor, withTimeout } from "./wait.js";
import { clientIdOf, signPeerRecord } from "../../src/core/peer-record.js";
import { randomId } from "../../src/core/random.js";
import { EcdsaUser } from "../../src/users/ecdsa-user.js";

export interface RawIdentity {
  user: EcdsaUser;
  address: string;
  clientId: string;
}

export async function rawIdentity(): Promise<RawIdentity> {
  const user = new EcdsaUser();
  await user.ready;
  const address = user.getAddress()!;
  return { user, address, clientId: clientIdOf(address) };
}

export type PingFrame = { type: "ping"; id: string; to: string[]; clientId: string; isServer: false; peer: PeerRecord };

/** A ping signed by `id`; the options tamper with its topic, timestamp or clientId. */
export async function signedPing(
  id: RawIdentity,
  topic: string,
  opts: { timestamp?: number; clientId?: string } = {},
): Promise<PingFrame> {
  const peer = await signPeerRecord(id.user, topic, "127.0.0.1", 0, opts.timestamp ?? Date.now());
  const clientId = opts.clientId ?? id.clientId;
  return { type: "ping", id: randomId(), to: [clientId], clientId, isServer: false, peer };
}

const T = 5000;

export type Frame = Record<string, unknown> & { type?: string; id?: string };

export interface RawLinkOptions {
  topic: string;
  /** Local address to dial from (127.0.0.x stands in for another host). */
  from?: string;
  /** Reuse an identity (e.g. to reconnect as the same peer). */
  id?: RawIdentity;
}

/** Every RawLink opened and not yet cleaned up; tests terminate them in afterEach. */
export const openRawLinks = new Set<RawLink>();

/** A hand-driven ToolDb client over a raw `ws` socket. */
export class RawLink {
  readonly frames: Frame[] = [];
  private closeInfo: { code: number; reason: string } | undefined;
  private readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(
    readonly ws: WebSocket,
    readonly id: RawIdentity,
    readonly topic: string,
  ) {
    ws.on("error", () => undefined);
    ws.on("message", (data) => {
      try {
        this.frames.push(JSON.parse(String(data)) as Frame);
      } catch {
        // servers only send JSON; ignore anything else
      }
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
      });
    });
  }

  /** Opens the socket (no handshake). Resolves once open; a server that refuses at once may close it right after. */
  static async open(port: number, opts: RawLinkOptions): Promise<RawLink> {
    const id = opts.id ?? (await rawIdentity());
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, opts.from ? { localAddress: opts.from } : {});
    const peer = new RawLink(ws, id, opts.topic);
    openRawLinks.add(peer);
    await Promise.race([waitFor(ws, "open", T), peer.closed]);
    return peer;
  }

  /** open() then a valid handshake; resolves once the server's pong arrived. */
  static async connect(port: number, opts: RawLinkOptions): Promise<RawLink> {
    const peer = await RawLink.open(port, opts);
    const pong = peer.next((f) => f.type === "pong");
    peer.send(await peer.ping());
    await pong;
    return peer;
  }

  /** A signed ping; the options tamper with its topic, timestamp or clientId. */
  ping(opts: { topic?: string; timestamp?: number; clientId?: string } = {}): Promise<PingFrame> {
    return signedPing(this.id, opts.topic ?? this.topic, opts);
  }

  send(frame: Frame | string | Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The next frame matching `pred` (also one that already arrived). */
  next(pred: (f: Frame) => boolean, ms = T): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return waitFor(this.ws, "message", ms, (data) => {
      try {
        return pred(JSON.parse(String(data)) as Frame);
      } catch {
        return false;
      }
    }).then(([data]) => JSON.parse(String(data)) as Frame);
  }

  /** Sends a get and resolves with the put that answers it. */
  async get(key: string, ms = T): Promise<ToolDbRecord> {
    const id = randomId();
    const reply = this.next((f) => f.type === "put" && f.id === id, ms);
    this.send({ type: "get", id, to: [], key });
    return (await reply).data as ToolDbRecord;
  }

  put(data: unknown): void {
    this.send({ type: "put", id: randomId(), to: [], data });
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  waitClose(ms = T): Promise<{ code: number; reason: string }> {
    return withTimeout(this.closed, ms, "the server to close the link");
  }

  terminate(): void {
    this.ws.terminate();
    openRawLinks.delete(this);
  }
}

/** Terminates every raw link still open. */
export function terminateRawLinks(): void {
  for (const link of [...openRawLinks]) link.terminate();
}
