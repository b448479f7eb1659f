/**
 * What the challenge in the handshake costs (issue 16): handshakes per
 * second on one server, a proving handshake (ping with a nonce, pong with
 * its proof, the client's proof, the ack: one more signature and one more
 * verification on each side, and a second round trip) beside a tool-db
 * 2.6.6-style one (ping, pong) in the same run, same server, same clients.
 * Clients are raw WebSockets in this process holding pre-signed pings, one
 * set of identities per kind (a node that proved itself is refused an
 * unproven handshake later); each link closes once its handshake is done.
 * Rounds alternate the two kinds.
 */
import { WebSocket } from "ws";
import { ToolDb } from "../src/index.js";
import { randomId } from "../src/base/random.js";
import { clientIdOf, handshakeNonce, handshakeProofDigest, signPeerRecord } from "../src/records/peer-record.js";
import type { PeerRecord } from "../src/records/messages.js";
import { EcdsaUser } from "../src/users/ecdsa-user.js";
import { fmt, median } from "./stats.js";

const TOPIC = "bench-handshake";
const PARALLEL = 100;

interface Client {
  user: EcdsaUser;
  ping: { type: "ping"; id: string; to: string[]; clientId: string; isServer: false; peer: PeerRecord };
}

async function clients(n: number): Promise<Client[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const user = new EcdsaUser();
      await user.ready;
      const clientId = clientIdOf(user.getAddress()!);
      const peer = await signPeerRecord(user, TOPIC, "127.0.0.1", 0, Date.now());
      return { user, ping: { type: "ping" as const, id: randomId(), to: [clientId], clientId, isServer: false as const, peer } };
    }),
  );
}

/** One handshake on a fresh link; resolves once it is done on both ends (pong, or the proof's ack), then closes it. */
function handshake(port: number, client: Client, proving: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    ws.on("error", reject);
    ws.on("close", (code, reason) => reject(new Error(`link closed before the handshake was done: ${code} ${String(reason)}`)));
    ws.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { type: string; nonce?: string };
      if (frame.type === "pong" && proving && frame.nonce) {
        void client.user.signData(handshakeProofDigest("proof", frame.nonce, client.ping.peer)).then((sig) => ws.send(JSON.stringify({ type: "proof", id: randomId(), to: [], sig })));
        return;
      }
      if (frame.type === "pong" || frame.type === "proofAck") {
        ws.terminate();
        resolve();
      }
    });
    ws.once("open", () => ws.send(JSON.stringify(proving ? { ...client.ping, nonce: handshakeNonce() } : client.ping)));
  });
}

async function perSecond(port: number, all: Client[], proving: boolean): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < all.length) await handshake(port, all[next++]!, proving);
    }),
  );
  return all.length / ((performance.now() - start) / 1000);
}

export interface HandshakeFigures {
  legacy: number[];
  proving: number[];
}

export async function handshakeBenchmark(n: number, rounds: number): Promise<HandshakeFigures> {
  const server = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: TOPIC, serverSync: false, limits: { maxConnections: 4 * PARALLEL, maxUnverifiedConnections: 4 * PARALLEL } });
  await server.ready;
  const port = (server.network as unknown as { port: number }).port;
  const [legacy, proving] = [await clients(n), await clients(n)];
  const out: HandshakeFigures = { legacy: [], proving: [] };
  try {
    await perSecond(port, proving.slice(0, 200), true); // warm-up
    await perSecond(port, legacy.slice(0, 200), false);
    for (let round = 0; round < rounds; round++) {
      out.legacy.push(await perSecond(port, legacy, false));
      out.proving.push(await perSecond(port, proving, true));
    }
  } finally {
    await server.close();
  }
  return out;
}

export function printHandshakeFigures(f: HandshakeFigures, out: (line: string) => void): void {
  const [legacy, proving] = [median(f.legacy), median(f.proving)];
  const range = (v: number[]) => `${fmt(Math.min(...v), 0)}–${fmt(Math.max(...v), 0)}`;
  out(
    `proving handshake (nonce, proof, ack: +1 signature and +1 verification each side): ${fmt(proving, 0)} /s (${range(f.proving)}), ` +
      `2.6.6-style handshake (ping, pong) on the same server: ${fmt(legacy, 0)} /s (${range(f.legacy)}); ratio ${fmt(proving / legacy, 2)} (median of ${f.legacy.length} alternating rounds)`,
  );
}
