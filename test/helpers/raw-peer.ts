/**
 * Pieces for driving the ToolDb handshake by hand over a raw socket (`ws`
 * or TCP with the stream framing): a fresh key pair, a signed ping
 * (optionally tampered with), and hand-driven links.
 */
import net from "node:net";
import { afterEach } from "node:test";
import { WebSocket } from "ws";
import { FrameDecoder, FrameKind, decodeClose, encodeFrame } from "../../src/network/stream-framing.js";
import type { PeerRecord } from "../../src/records/messages.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import { WaitTimeoutError, withTimeout } from "./wait.js";
import { clientIdOf, handshakeNonce, handshakeProofDigest, signPeerRecord } from "../../src/records/peer-record.js";
import { randomId } from "../../src/base/random.js";
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

/** What a frame wait (`next()`) rejects with once its link is closed: the close code and reason it ended with. */
export class LinkClosedError extends Error {
  readonly code = "LINK_CLOSED";
  constructor(
    readonly closeCode: number,
    readonly reason: string,
  ) {
    super(`the link closed (${closeCode}${reason ? ` ${reason}` : ""}) before a matching frame arrived`);
    this.name = "LinkClosedError";
  }
}

/** Every raw link opened and not yet cleaned up; tests terminate them in afterEach. */
export const openRawLinks = new Set<RawPeerLink>();

/** A hand-driven ToolDb client on some transport: frames in, frames (or raw bytes) out. */
export abstract class RawPeerLink {
  readonly frames: Frame[] = [];
  private closeInfo: { code: number; reason: string } | undefined;
  private resolveClosed!: (info: { code: number; reason: string }) => void;
  protected readonly closed = new Promise<{ code: number; reason: string }>((resolve) => (this.resolveClosed = resolve));
  private readonly listeners = new Set<(frame: Frame) => void>();
  /** The pending frame waits, failed when the link ends. */
  private readonly waits = new Set<(err: LinkClosedError) => void>();

  protected constructor(
    readonly id: RawIdentity,
    readonly topic: string,
  ) {
    openRawLinks.add(this);
  }

  /** Sends a ToolDb message (an object is serialised) as one text frame. */
  abstract send(frame: Frame | string): void;
  /** Sends arbitrary bytes as the payload of one text frame (e.g. invalid UTF-8). */
  abstract sendBytes(bytes: Buffer): void;
  protected abstract destroy(): void;

  protected received(text: string): void {
    let frame: Frame;
    try {
      frame = JSON.parse(text) as Frame;
    } catch {
      return; // servers only send JSON; ignore anything else
    }
    this.frames.push(frame);
    for (const listener of this.listeners) listener(frame);
  }

  protected ended(code: number, reason: string): void {
    if (this.closeInfo) return;
    this.closeInfo = { code, reason };
    this.resolveClosed(this.closeInfo);
    for (const fail of [...this.waits]) fail(new LinkClosedError(code, reason));
  }

  /** A signed ping; the options tamper with its topic, timestamp or clientId. */
  ping(opts: { topic?: string; timestamp?: number; clientId?: string } = {}): Promise<PingFrame> {
    return signedPing(this.id, opts.topic ?? this.topic, opts);
  }

  /**
   * The handshake of a current node: a ping with a fresh nonce, then the
   * proof over the pong's nonce, so the other side holds a proven session
   * with this raw identity (an attacker with its own key can do this much).
   * Resolves with the pong once the other side acknowledged the proof.
   */
  async provenHandshake(opts: { isServer?: boolean; caps?: string[] } = {}): Promise<Frame> {
    const ping = { ...(await this.ping()), isServer: opts.isServer ?? false, caps: opts.caps, nonce: handshakeNonce() };
    const pong = this.next((f) => f.type === "pong");
    this.send(ping);
    const answer = await pong;
    if (typeof answer.nonce !== "string") throw new Error("the pong carries no challenge");
    const sig = await this.id.user.signData(handshakeProofDigest("proof", answer.nonce, ping.peer));
    const ack = this.next((f) => f.type === "proofAck");
    this.send({ type: "proof", id: randomId(), to: [], sig });
    await ack;
    return answer;
  }

  /** Sends a valid ping and resolves once the server's pong arrived. */
  async handshake(): Promise<this> {
    const pong = this.next((f) => f.type === "pong");
    this.send(await this.ping());
    await pong;
    return this;
  }

  /**
   * The next frame matching `pred` (also one that already arrived, even on a
   * closed link). Rejects with a WaitTimeoutError after `ms`, or with a
   * LinkClosedError as soon as the link is closed (by either side, or
   * terminated): no frame can come any more.
   */
  next(pred: (f: Frame) => boolean, ms = T): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    // A wait a test let go of (raced against the link's close, which won) is no unhandled rejection; awaited, it rejects.
    return handled(this.closeInfo ? Promise.reject(new LinkClosedError(this.closeInfo.code, this.closeInfo.reason)) : this.wait(pred, ms));
  }

  private wait(pred: (f: Frame) => boolean, ms: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.waits.delete(fail);
      };
      const timer = setTimeout(() => {
        done();
        reject(new WaitTimeoutError("a matching frame", ms));
      }, ms);
      // The wait does not hold the process open (an open link's socket does): a wait left on a link the server
      // closed or the test terminated kept its test file's process alive up to `ms` (10 s) after its last test.
      timer.unref();
      const listener = (frame: Frame) => {
        if (!pred(frame)) return;
        done();
        resolve(frame);
      };
      const fail = (err: LinkClosedError) => {
        done();
        reject(err);
      };
      this.listeners.add(listener);
      this.waits.add(fail);
    });
  }

  /** Calls `listener` with every frame that arrives from now on (until the link is terminated). */
  onFrame(listener: (frame: Frame) => void): void {
    this.listeners.add(listener);
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
    this.destroy();
    this.listeners.clear();
    openRawLinks.delete(this);
  }
}

/** A raw `ws` link. */
export class RawLink extends RawPeerLink {
  private constructor(
    readonly ws: WebSocket,
    id: RawIdentity,
    topic: string,
  ) {
    super(id, topic);
    ws.on("error", () => undefined);
    ws.on("message", (data, isBinary) => !isBinary && this.received(String(data)));
    ws.on("close", (code: number, reason: Buffer) => this.ended(code, reason.toString()));
  }

  /** Opens the socket (no handshake). Resolves once open; a server that refuses at once may close it right after. */
  static async open(port: number, opts: RawLinkOptions): Promise<RawLink> {
    const id = opts.id ?? (await rawIdentity());
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, opts.from ? { localAddress: opts.from } : {});
    const peer = new RawLink(ws, id, opts.topic);
    const opened = new Promise<void>((resolve) => ws.once("open", () => resolve()));
    await withTimeout(Promise.race([opened, peer.closed]), T, "the socket to open");
    return peer;
  }

  /** open() then a valid handshake; resolves once the server's pong arrived. */
  static async connect(port: number, opts: RawLinkOptions): Promise<RawLink> {
    return (await RawLink.open(port, opts)).handshake();
  }

  send(frame: Frame | string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  sendBytes(bytes: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes, { binary: false });
  }

  /**
   * One part of a fragmented text message: the first part opens it (FIN=0),
   * later ones continue it, and `fin` ends it. `ws` answers the server's
   * pings meanwhile (pongs between the parts, as the protocol allows).
   */
  sendPart(bytes: Buffer, fin: boolean): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes, { binary: false, fin });
  }

  /** A binary frame (ToolDb only speaks text). */
  sendBinary(bytes: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes, { binary: true });
  }

  protected destroy(): void {
    this.ws.terminate();
  }
}

/** A byte stream a raw stream link runs on: a TCP socket, a Hyperswarm socket. */
export interface RawStream {
  readonly destroyed: boolean;
  /** Stops reading (TCP and Hyperswarm sockets both have it): what the far end sends piles up on its side. */
  pause?(): unknown;
  write(data: Uint8Array): unknown;
  destroy(): unknown;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "close", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
}

/** A raw link speaking the stream framing (src/network/stream-framing.ts) on TCP or any byte stream. */
export class RawTcpLink extends RawPeerLink {
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024);
  /** False: heartbeat pings go unanswered (a peer that died without closing). */
  answersPings = true;

  private constructor(
    readonly socket: RawStream,
    id: RawIdentity,
    topic: string,
  ) {
    super(id, topic);
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => {
      const result = this.decoder.push(chunk);
      for (const { kind, payload } of result.frames) {
        if (kind === FrameKind.MESSAGE) this.received(payload.toString("utf8"));
        else if (kind === FrameKind.CLOSE) {
          const { code, reason } = decodeClose(payload);
          this.ended(code, reason);
        } else if (kind === FrameKind.PING && this.answersPings) socket.write(encodeFrame(FrameKind.PONG));
      }
    });
    socket.on("close", () => this.ended(1006, "socket closed"));
  }

  static async open(port: number, opts: RawLinkOptions): Promise<RawTcpLink> {
    const id = opts.id ?? (await rawIdentity());
    const socket = net.connect({ host: "127.0.0.1", port, ...(opts.from ? { localAddress: opts.from } : {}) });
    socket.setNoDelay(true);
    const peer = new RawTcpLink(socket, id, opts.topic);
    const opened = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    await withTimeout(Promise.race([opened, peer.closed]), T, "the socket to open");
    return peer;
  }

  /** The stream framing on an open byte stream (e.g. a Hyperswarm connection). */
  static async over(stream: RawStream, opts: RawLinkOptions): Promise<RawTcpLink> {
    return new RawTcpLink(stream, opts.id ?? (await rawIdentity()), opts.topic);
  }

  send(frame: Frame | string): void {
    this.sendBytes(Buffer.from(typeof frame === "string" ? frame : JSON.stringify(frame), "utf8"));
  }

  sendBytes(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(FrameKind.MESSAGE, bytes));
  }

  /** Bytes written as they are, framing or not. */
  sendRaw(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  protected destroy(): void {
    this.socket.destroy();
  }
}

/** Terminates every raw link still open. */
export function terminateRawLinks(): void {
  for (const link of [...openRawLinks]) link.terminate();
}

/**
 * The nodes of a suite whose tests attack them with raw links: after each
 * test the raw links are cut and every node pushed to the returned list is
 * closed (within `ms`). Call it inside the `describe`.
 */
export function closedAfterEachTest<N extends { close(): Promise<void> }>(ms: number): N[] {
  const nodes: N[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), ms, "nodes to close");
  });
  return nodes;
}

/** `promise`, marked handled: its rejection reaches whoever awaits it, and is no unhandled rejection if nobody does. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
