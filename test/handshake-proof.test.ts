/**
 * Proven identities (issue 16, attack 2). A pong carries the server's signed
 * peer record, valid for minutes and handed to anyone who connects; replayed
 * by an impostor it used to pass for the real server, which the client then
 * parked as a duplicate. Each side now signs the other's fresh nonce with its
 * record's key, so a replayed pong or ping opens no session in another
 * node's name, and a proven link is never dropped for an unproven one. The
 * attacker here is a raw listener (WebSocket, and TCP with the stream
 * framing) replaying frames captured from the real nodes; afterwards the
 * client still has its real server and its data.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { ErrorCode } from "../src/base/errors.js";
import { CloseCode } from "../src/network/connection.js";
import type { PeerSession } from "../src/network/peer-session.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { randomId } from "../src/base/random.js";
import { type Impostor, tcpImpostor, wsImpostor } from "./helpers/impostor.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { type Frame, RawLink, type RawPeerLink, RawTcpLink, rawIdentity, terminateRawLinks } from "./helpers/raw-peer.js";
import { waitFor, withTimeout } from "./helpers/wait.js";

const TOPIC = "proof";
const T = 5000;

interface Transport {
  name: string;
  options: Partial<ToolDbOptions>;
  impostor(answer: (ping: Frame) => Frame | undefined): Promise<Impostor>;
  raw(port: number): Promise<RawPeerLink>;
}

const transports: Transport[] = [
  { name: "WebSocket", options: {}, impostor: wsImpostor, raw: (port) => RawLink.open(port, { topic: TOPIC }) },
  { name: "TCP", options: { networkAdapter: TcpNetwork }, impostor: tcpImpostor, raw: (port) => RawTcpLink.open(port, { topic: TOPIC }) },
];

/** A pong without its proof and challenge: what a tool-db 2.6.6 server would send. */
function stripped(pong: Frame): Frame {
  const { proof: _proof, nonce: _nonce, ...rest } = pong;
  return rest;
}

for (const transport of transports) {
  describe(`handshake proofs over ${transport.name}`, () => {
    const nodes: ToolDb[] = [];
    const impostors: Impostor[] = [];
    afterEach(async () => {
      terminateRawLinks();
      await withTimeout(Promise.all([...nodes.splice(0).map((n) => n.close()), ...impostors.splice(0).map((i) => i.close())]), T, "cleanup");
    });

    async function server(): Promise<ToolDb> {
      const db = new ToolDb({ server: true, host: "127.0.0.1", port: 0, topic: TOPIC, ...FAST, ...transport.options });
      nodes.push(db);
      await db.ready;
      return db;
    }

    async function client(): Promise<ToolDb> {
      const db = new ToolDb({ topic: TOPIC, ...FAST, ...transport.options });
      nodes.push(db);
      await db.ready;
      return db;
    }

    async function linked(srv: ToolDb, cli: ToolDb): Promise<PeerSession> {
      cli.network.connectTo("127.0.0.1", portOf(srv));
      await waitUntil(() => cli.network.session(srv.network.getClientAddress())?.proven === true, T, "a proven link to the server");
      await waitUntil(() => srv.network.session(cli.network.getClientAddress()) !== undefined, T, "the server's session");
      return cli.network.session(srv.network.getClientAddress())!;
    }

    /** The server's pong to a raw peer that asked with its own nonce: what an attacker can collect. */
    async function capturedPong(srv: ToolDb): Promise<Frame> {
      const spy = await transport.raw(portOf(srv));
      const pong = await spy.provenHandshake();
      spy.terminate();
      return pong;
    }

    async function assertDataIntact(srv: ToolDb, cli: ToolDb, real: PeerSession): Promise<void> {
      const serverId = srv.network.getClientAddress();
      assert.equal(cli.network.session(serverId), real, "the client kept its real link");
      assert.equal(real.connection.closed, false);
      assert.equal(real.proven, true);
      const key = `after-${randomId()}`;
      const stored = waitFor(srv, "put", T, (message) => message.data.k === key);
      await cli.putData(key, "reaches the real server", false, { ack: 1, timeoutMs: T });
      await stored;
      await srv.putData("server-side", "from the real server");
      assert.equal(await cli.getData("server-side", false, T), "from the real server");
    }

    it("two current nodes prove themselves to each other; the server is a proven server to the client", { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client();
      const provenOnServer = waitFor(srv.network, "session-proven", T);
      const provenOnClient = waitFor(cli.network, "session-proven", T);
      const real = await linked(srv, cli);
      const [fromClient] = await provenOnServer;
      const [fromServer] = await provenOnClient;
      assert.equal(fromServer, real);
      assert.equal(real.provenServer, true);
      assert.equal(fromClient.proven, true);
      assert.equal(fromClient.provenServer, false, "a client is proven, not a server");
    });

    it("a peer that sends no nonce (as tool-db 2.6.6) links unproven, and no session-proven is emitted", { timeout: 20_000 }, async () => {
      const srv = await server();
      let proven = 0;
      srv.network.on("session-proven", () => proven++);
      const legacy = await transport.raw(portOf(srv));
      await legacy.handshake();
      const id = legacy.id.clientId;
      await waitUntil(() => srv.network.session(id) !== undefined, T, "the legacy session");
      assert.equal(srv.network.session(id)!.proven, false);
      assert.equal(proven, 0);
    });

    it("a server's pong replayed by an impostor opens nothing: the client keeps its real server and its data", { timeout: 30_000 }, async () => {
      const srv = await server();
      const cli = await client();
      const real = await linked(srv, cli);
      const pong = await capturedPong(srv);
      for (const [variant, replay, reason] of [
        ["as captured", (ping: Frame) => ({ ...pong, id: ping.id }), /proof does not verify/],
        ["stripped to a 2.6.6 pong", (ping: Frame) => ({ ...stripped(pong), id: ping.id }), /proved its identity before/],
      ] as const) {
        const impostor = await transport.impostor(replay);
        impostors.push(impostor);
        const refused = waitFor(cli, "refused", T, (e) => e.code === ErrorCode.BAD_PEER && reason.test(e.reason));
        cli.network.connectTo("127.0.0.1", impostor.port);
        await refused;
        assert.ok(impostor.received.some((f) => f.type === "ping"), `${variant}: the client did dial the impostor`);
        assert.ok(!impostor.received.some((f) => f.type === "put" || f.type === "get" || f.type === "proof"), `${variant}: nothing went to the impostor`);
        await assertDataIntact(srv, cli, real);
      }
    });

    it("an impostor linked first is pushed out by the real server's proven link, never the other way round", { timeout: 30_000 }, async () => {
      const srv = await server();
      const pong = await capturedPong(srv);
      const impostor = await transport.impostor((ping) => ({ ...stripped(pong), id: ping.id }));
      impostors.push(impostor);
      const cli = await client();
      const serverId = srv.network.getClientAddress();
      cli.network.connectTo("127.0.0.1", impostor.port);
      // Without a proof to compare against, the replay is taken for a 2.6.6 server: a legacy link, unproven.
      await waitUntil(() => cli.network.session(serverId) !== undefined, T, "the impostor's legacy session");
      const fake = cli.network.session(serverId)!;
      assert.equal(fake.proven, false);
      assert.equal(fake.provenServer, false);
      const duplicate = waitFor(cli.network, "duplicate", T);
      const real = await linked(srv, cli);
      await duplicate;
      assert.notEqual(real, fake);
      assert.equal(fake.connection.closed, true, "the impostor's link was the one dropped");
      await assertDataIntact(srv, cli, real);
    });

    it("a client's ping replayed to its server opens nothing in the client's name", { timeout: 30_000 }, async () => {
      const srv = await server();
      const cli = await client();
      const real = await linked(srv, cli);
      const serverSide = srv.network.session(cli.network.getClientAddress())!;
      // The attacker collects the client's ping by being dialed by it.
      const trap = await transport.impostor(() => undefined);
      impostors.push(trap);
      cli.network.connectTo("127.0.0.1", trap.port);
      await waitUntil(() => trap.received.some((f) => f.type === "ping"), T, "the client's ping");
      cli.network.disconnectFrom("127.0.0.1", trap.port);
      const ping = trap.received.find((f) => f.type === "ping")!;
      assert.equal(typeof ping.nonce, "string");

      // As captured: the server answers with its own challenge, which the attacker cannot sign with the client's key.
      const replayer = await transport.raw(portOf(srv));
      const challenged = replayer.next((f) => f.type === "pong");
      replayer.send({ ...ping, id: randomId() });
      const answer = await challenged;
      const forged = await (await rawIdentity()).user.signData(String(answer.nonce));
      replayer.send({ type: "proof", id: randomId(), to: [], sig: forged });
      assert.equal((await replayer.waitClose()).code, CloseCode.BAD_PEER);

      // Stripped of its nonce, as a 2.6.6 ping: refused, since this client proved itself before.
      const downgraded = await transport.raw(portOf(srv));
      const { nonce: _nonce, ...legacyPing } = ping;
      downgraded.send({ ...legacyPing, id: randomId() });
      assert.equal((await downgraded.waitClose()).code, CloseCode.BAD_PEER);

      assert.equal(srv.network.session(cli.network.getClientAddress()), serverSide, "the server kept the client's real session");
      assert.equal(serverSide.connection.closed, false);
      await assertDataIntact(srv, cli, real);
    });
  });
}
