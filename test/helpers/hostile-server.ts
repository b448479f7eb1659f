/**
 * (From the outside check of pages against hostile servers.)
 * A hostile "server" for page attacks: a raw `ws` listener that answers the
 * ToolDb handshake as a proven server (its own valid key, a fresh signed
 * record, the proof over the page's nonce), then does whatever the test
 * says with every frame the page sends (`onFrame`), or nothing (`silent`).
 */
import { WebSocketServer, type WebSocket } from "ws";
import type { PeerRecord } from "../../src/records/messages.js";
import { handshakeNonce, handshakeProofDigest, signPeerRecord } from "../../src/records/peer-record.js";
import { randomId } from "../../src/base/random.js";
import { rawIdentity, type Frame, type RawIdentity } from "./raw-peer.js";
import type { ToolDb } from "../../src/node/tooldb.js";
import { RBSR_CAPABILITY, type RangeSyncRun } from "../../src/node/sync/range-sync.js";

export interface HostileLink {
  ws: WebSocket;
  send(frame: Frame | string): void;
}

export class HostileServer {
  readonly received: Frame[] = [];
  readonly links = new Set<HostileLink>();
  /** Frames after the handshake: the test's handler (default: none answered). */
  onFrame: (link: HostileLink, frame: Frame) => void = () => undefined;
  /** Server records listed in every pong. */
  servers: PeerRecord[] = [];
  /** After the handshake, answer nothing at all (server-list pings included). */
  silent = false;
  /** Capabilities listed in every pong (e.g. `rbsr1`: a server that dials it runs range sync with it). */
  caps: string[] = [];
  handshakes = 0;
  /** What the pong says it is (a peer that announced but is no server says false). */
  isServer = true;
  /** Awaited before each handshake's pong is sent (e.g. to hold a handshake until the test lets it go). */
  beforePong: () => Promise<void> = () => Promise.resolve();

  private constructor(
    private readonly wss: WebSocketServer,
    readonly id: RawIdentity,
    readonly topic: string,
    readonly host: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `ws://${this.host}:${this.port}`;
  }

  static async start(topic: string, host = "127.0.0.1", maxPayload = 512 * 1024 * 1024): Promise<HostileServer> {
    const wss = new WebSocketServer({ host, port: 0, maxPayload });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const id = await rawIdentity();
    const server = new HostileServer(wss, id, topic, host, (wss.address() as { port: number }).port);
    wss.on("connection", (ws) => server.accept(ws));
    return server;
  }

  record(): Promise<PeerRecord> {
    return signPeerRecord(this.id.user, this.topic, this.host, this.port, Date.now(), this.url);
  }

  private accept(ws: WebSocket): void {
    const link: HostileLink = { ws, send: (f) => ws.readyState === ws.OPEN && ws.send(typeof f === "string" ? f : JSON.stringify(f)) };
    let ours: string | undefined;
    let open = false;
    ws.on("error", () => undefined);
    ws.on("close", () => this.links.delete(link));
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let frame: Frame;
      try {
        frame = JSON.parse(String(data)) as Frame;
      } catch {
        return;
      }
      this.received.push(frame);
      if (!open) {
        if (frame.type === "ping" && typeof frame.nonce === "string") {
          ours = handshakeNonce();
          const nonce = frame.nonce;
          void this.beforePong()
            .then(() => this.pong(frame.id as string, nonce, ours))
            .then((pong) => link.send(pong));
        } else if (frame.type === "proof" && ours) {
          open = true;
          this.handshakes++;
          link.send({ type: "proofAck", id: randomId(), to: [] });
          this.links.add(link);
        }
        return;
      }
      if (this.silent) return;
      if (frame.type === "ping") {
        void this.pong(frame.id as string).then((pong) => link.send(pong));
        return;
      }
      this.onFrame(link, frame);
    });
  }

  private async pong(id: string, theirs?: string, ours?: string): Promise<Frame> {
    const peer = await this.record();
    const pong: Frame = { type: "pong", id, to: [], clientId: this.id.clientId, isServer: this.isServer, servers: this.servers, peer, caps: this.caps };
    if (theirs) {
      pong.proof = await this.id.user.signData(handshakeProofDigest("pong", theirs, peer));
      pong.nonce = ours;
    }
    return pong;
  }

  /** Sends to every linked page. */
  broadcast(frame: Frame | string): number {
    for (const l of this.links) l.send(frame);
    return this.links.size;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/**
 * A fake server that behaves (client-rotation.test.ts): answers what a
 * client's server watch asks (empty key queries, NOT_FOUND function calls,
 * acknowledged puts, which it then drops) and serves no record.
 */
export function answerAsServer(h: HostileServer): HostileServer {
  h.onFrame = (link, f) => {
    if (f.type === "query") link.send({ type: "queryAck", id: f.id, to: [], keys: [] });
    if (f.type === "function") link.send({ type: "functionReturn", id: f.id, to: [], code: "NOT_FOUND", return: "" });
    const hash = (f.data as { h?: string } | undefined)?.h;
    if (f.type === "put" && f.ack === true && typeof hash === "string") link.send({ type: "putAck", id: `a${f.id as string}`.slice(0, 60), to: [], stored: [hash] });
  };
  return h;
}

/** A started `answerAsServer` fake at `host`, in `closers` (helpers/teardown.ts). */
export async function behavingFake(topic: string, closers: Array<{ close(): unknown }>, host = "127.0.0.10"): Promise<HostileServer> {
  const h = answerAsServer(await HostileServer.start(topic, host));
  closers.push(h);
  return h;
}

/**
 * A hostile "server" at `host` listing rbsr1 (a server that dials it runs
 * range sync with it), its frames handled by `onFrame`, that `db` dials;
 * `runs`: db's range-sync runs with it, as they end. The caller closes it.
 */
export async function dialHostile(db: ToolDb, topic: string, onFrame: HostileServer["onFrame"], host = "127.0.0.1"): Promise<{ hostile: HostileServer; runs: RangeSyncRun[] }> {
  const hostile = await HostileServer.start(topic, host);
  hostile.caps = [RBSR_CAPABILITY];
  hostile.onFrame = onFrame;
  const runs: RangeSyncRun[] = [];
  db.sync.range!.on("done", (run) => run.peer === hostile.id.clientId && runs.push(run));
  db.network.connectTo(host, hostile.port);
  return { hostile, runs };
}
