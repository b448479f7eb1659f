/**
 * Reputation poisoning with a replayed peer record (outside check, attack 2;
 * reproduced over Hyperswarm by attack/identity-replay.mjs, where any
 * announcer of a topic is dialed by every client and so collects their
 * pings). A peer record proves nothing, so an unproven (2.6.6-style) session
 * opened with someone else's record must not cost that someone anything: a
 * protocol offence on it may ban the link's IP, never the identity it named.
 * Before: one malformed frame on such a session banned the named client's
 * identity for banDuration (10 min), and the real client, proving its key,
 * was refused as BANNED at the server it had never reached before.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ToolDb } from "../src/index.js";
import type { ToolDbOptions } from "../src/node/options.js";
import { ErrorCode } from "../src/base/errors.js";
import { randomId } from "../src/base/random.js";
import { type Impostor, wsImpostor } from "./helpers/impostor.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { RawLink, terminateRawLinks } from "./helpers/raw-peer.js";
import { withTimeout } from "./helpers/wait.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const TOPIC = "replayed-ban";
const T = 5000;
const unhandled = collectUnhandledRejections();

describe("a replayed peer record cannot get its owner banned", () => {
  const nodes: ToolDb[] = [];
  const impostors: Impostor[] = [];
  afterEach(async () => {
    terminateRawLinks();
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
    await Promise.all(impostors.splice(0).map((i) => i.close()));
  });
  async function node(opts: Partial<ToolDbOptions>): Promise<ToolDb> {
    const db = new ToolDb({ topic: TOPIC, host: "127.0.0.1", port: 0, ...FAST, ...opts });
    nodes.push(db);
    await db.ready;
    return db;
  }

  it("a client's ping, captured by a fake server and replayed without its nonce to a real server that never met the client, followed by a malformed frame: the client still links and writes", { timeout: 30_000 }, async () => {
    // Loopback is exempt by default; an attacker's address is not.
    const srv = await node({ server: true, limits: { exemptIps: [] } });
    const bans: string[] = [];
    srv.on("refused", (e) => e.code === ErrorCode.BANNED && bans.push(e.reason));

    // The victim dials a fake server first (on a DHT topic, anyone may announce): its ping is captured.
    const trap = await wsImpostor(() => undefined);
    impostors.push(trap);
    const cli = await node({ peers: [{ host: "127.0.0.1", port: trap.port }] });
    await waitUntil(() => trap.received.some((f) => f.type === "ping"), T, "the client's ping");
    const { nonce: _nonce, ...legacyPing } = trap.received.find((f) => f.type === "ping")!;

    // The attacker, from another address, opens an unproven session in the client's name and breaks the protocol once.
    const replayer = await RawLink.open(portOf(srv), { topic: TOPIC, from: "127.0.0.66" });
    const pong = replayer.next((f) => f.type === "pong");
    replayer.send({ ...legacyPing, id: randomId() });
    await pong;
    replayer.sendBytes(Buffer.from("{not json"));
    await replayer.waitClose();

    // The real client, proving its own key, reaches the server and writes.
    cli.network.connectTo("127.0.0.1", portOf(srv));
    try {
      await waitUntil(() => cli.network.isConnected(srv.network.getClientAddress()), 10_000, "the client to link the server");
    } catch (err) {
      throw new Error(`${(err as Error).message}; the server refused as banned: ${JSON.stringify(bans.slice(0, 2))}`);
    }
    await cli.putData("still-welcome", 1, false, { ack: 1, timeoutMs: T });
    assert.equal(await srv.getData("still-welcome", false, 1000), 1);
    assert.deepEqual(unhandled, []);
  });
});
