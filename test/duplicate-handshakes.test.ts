/**
 * Two handshakes of one identity that reach a server at the same moment
 * (two carriers, or two addresses, dialed by the same node): the server
 * keeps exactly one link and answers only that one, and its session table
 * holds that link. Before the duplicate check and the session table were
 * updated in one step, both handshakes could pass the check while the
 * first pong was being signed: both links were answered, the table kept the
 * second, and when the client dropped that one as its duplicate the server
 * was left with no session over a link still open.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ToolDb } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { randomId } from "../src/base/random.js";
import { portOf, startServer, waitUntil } from "./helpers/nodes.js";
import { LinkClosedError, RawLink, openRawLinks, rawIdentity, signedPing } from "./helpers/raw-peer.js";
import { withTimeout } from "./helpers/wait.js";

const T = 5000;

describe("duplicate handshakes arriving together", () => {
  const nodes: ToolDb[] = [];
  afterEach(async () => {
    for (const link of [...openRawLinks]) link.terminate();
    await withTimeout(Promise.all(nodes.splice(0).map((n) => n.close())), T, "nodes to close");
  });

  it("one identity, two links, both pings in one turn: one pong, the other link closed as duplicate, the session on the open link", { timeout: 20_000 }, async () => {
    const srv = await startServer();
    nodes.push(srv);
    const id = await rawIdentity();
    for (let round = 0; round < 5; round++) {
      const links = await Promise.all([RawLink.open(portOf(srv), { topic: "test", id }), RawLink.open(portOf(srv), { topic: "test", id })]);
      // One signed record for both, as a node's cached record is: the checks of both finish together.
      const ping = await signedPing(id, "test");
      for (const link of links) link.send({ ...ping, id: randomId() });
      const outcome = await withTimeout(
        Promise.all(
          links.map((l) =>
            l.next((f) => f.type === "pong").then(
              () => "pong" as const,
              (err: unknown) => {
                // Closed before any pong: the close code (a pending frame wait rejects as the link closes).
                if (err instanceof LinkClosedError) return err.closeCode;
                throw err;
              },
            ),
          ),
        ),
        T,
        "both links to be answered or closed",
      );
      assert.deepEqual([...outcome].sort(), [CloseCode.DUPLICATE, "pong"].sort(), `round ${round}: ${JSON.stringify(outcome)}`);
      const kept = links[outcome.indexOf("pong")]!;
      assert.equal(kept.isClosed, false);
      const session = srv.network.session(id.clientId);
      assert.ok(session && !session.connection.closed, `round ${round}: the server's session is on the open link`);
      assert.equal(srv.network.peers.length, 1);
      kept.terminate();
      await waitUntil(() => srv.network.peers.length === 0, T, "the session to close");
    }
  });
});
