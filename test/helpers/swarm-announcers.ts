/**
 * Fake announcers of a Hyperswarm topic for attack tests: key pairs on one
 * HyperDHT node that announce the topic and prove a fresh ToolDb key each in
 * the handshake (what any stranger can do). `isServer` says what they claim
 * to be; `behave` makes them answer what a client's server watch asks (key
 * queries with no keys, function calls NOT_FOUND, acknowledged puts as
 * stored) while serving no record: the cheapest fake a client cannot tell
 * from an empty server by its answers.
 */
import HyperDHT, { type KeyPair } from "hyperdht";
import type { SwarmSocket } from "hyperswarm";
import { topicKey } from "../../src/network/hyperswarm-network.js";
import { handshakeNonce, handshakeProofDigest, signPeerRecord } from "../../src/records/peer-record.js";
import { randomId } from "../../src/base/random.js";
import type { ToolDb, ToolDbOptions } from "../../src/index.js";
import type { HyperswarmNetworkOptions } from "../../src/network/hyperswarm-options.js";
import { RawTcpLink, rawIdentity, type Frame } from "./raw-peer.js";
import { swarmOn, type Testnet } from "./hyperdht-testnet.js";

const T = 15_000;

/** The parts of hyperdht's API the announcers use (not in types/hyperswarm.d.ts). */
interface AnnouncingDht {
  createServer(onConnection: (socket: SwarmSocket) => void): { listen(keyPair: KeyPair): Promise<void> };
  announce(topic: Buffer, keyPair: KeyPair, relayAddresses: unknown[]): { finished(): Promise<void> };
}

export interface AnnouncerOptions {
  isServer?: boolean;
  behave?: boolean;
  /** Take each connection and never answer (a stranger that never finishes a handshake). */
  stall?: boolean;
}

/** What a behaving fake answers to a frame, if anything. */
function answer(f: Frame): Frame | undefined {
  const id = f.id;
  if (f.type === "query") return { type: "queryAck", id, to: [], keys: [] };
  if (f.type === "function") return { type: "functionReturn", id, to: [], code: "NOT_FOUND", return: "" };
  if ((f.type === "put" || f.type === "crdtPut") && f.ack) {
    const h = (f.data as { h?: unknown } | undefined)?.h;
    return { type: "putAck", id, to: [], stored: typeof h === "string" ? [h] : [] };
  }
  return undefined;
}

/** `n` announcers on `node`; `connections()` counts the links made to them. */
export async function topicAnnouncers(node: HyperDHT, topic: string, n: number, opts: AnnouncerOptions = {}): Promise<{ connections: () => number }> {
  const dht = node as unknown as AnnouncingDht;
  let connections = 0;
  for (let i = 0; i < n; i++) {
    const id = await rawIdentity();
    const server = dht.createServer((socket) => {
      connections++;
      socket.on("error", () => undefined);
      if (opts.stall) return;
      void RawTcpLink.over(socket, { topic, id }).then(async (link) => {
        const ping = await link.next((f) => f.type === "ping", T).catch(() => undefined);
        if (!ping || typeof ping.nonce !== "string") return;
        const peer = await signPeerRecord(id.user, topic, "127.0.0.1", 0, Date.now());
        const proof = await id.user.signData(handshakeProofDigest("pong", ping.nonce, peer));
        link.next((f) => f.type === "proof", T).then(
          () => link.send({ type: "proofAck", id: randomId(), to: [] }),
          () => undefined,
        );
        link.send({ type: "pong", id: ping.id, to: [], clientId: id.clientId, isServer: opts.isServer ?? false, servers: [], peer, proof, nonce: handshakeNonce() });
        if (!opts.behave) return;
        link.onFrame((f) => {
          const reply = answer(f);
          if (reply) link.send(reply);
        });
      });
    });
    const keyPair = HyperDHT.keyPair();
    await server.listen(keyPair);
    await dht.announce(topicKey(topic), keyPair, []).finished();
  }
  return { connections: () => connections };
}

/** The topic `<name>-<pid>` and a node on `testnet`, fully bootstrapped, to announce it from (dht.destroy() is the test's). */
export async function announcingNode(testnet: Testnet, name: string): Promise<{ topic: string; dht: HyperDHT }> {
  const topic = `${name}-${process.pid}`;
  const dht = testnet.createNode();
  await dht.fullyBootstrapped();
  return { topic, dht };
}

/** Fake-filled: the topic, its announcing node, the fakes' link count and the client they fill. */
export interface FakeFilledTopic {
  topic: string;
  dht: HyperDHT;
  attack: { connections: () => number };
  cli: ToolDb;
}

/**
 * A topic announced by `fakes` fakes that say they are servers and answer a
 * client's server watch (`isServer`, `behave`), and a client of it on
 * Hyperswarm (made by `node`) with `slots` swarm slots, rotated every 300 ms:
 * the fakes fill its slots until a real server comes. `swarm`: more of the
 * client's Hyperswarm options (a short `closeLinger`: the fakes never end
 * their side of a link the client closes).
 */
export async function fakeFilledTopic(
  testnet: Testnet,
  node: (opts: Partial<ToolDbOptions>) => Promise<ToolDb>,
  name: string,
  fakes: number,
  slots: number,
  swarm: HyperswarmNetworkOptions = {},
): Promise<FakeFilledTopic> {
  const { topic, dht } = await announcingNode(testnet, name);
  const attack = await topicAnnouncers(dht, topic, fakes, { isServer: true, behave: true });
  const cli = await node({ topic, networkAdapter: swarmOn(testnet, { maxPeers: slots, rotateInterval: 300, ...swarm }) });
  return { topic, dht, attack, cli };
}

/** A stale announce on `node`: a key announced on the topic whose peer does not listen (as one that left). */
export async function staleAnnounce(node: HyperDHT, topic: string): Promise<void> {
  await (node as unknown as AnnouncingDht).announce(topicKey(topic), HyperDHT.keyPair(), []).finished();
}
