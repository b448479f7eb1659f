/**
 * Dial targets of a composite whose transports that dial addresses close:
 * while one is open the targets are dialed through it; once none is (a
 * closed transport does not open again) every target is given up with a
 * final dial-failed event. Before, they kept retrying with backoff for
 * ever, each attempt failing at once ("no open transport of this node
 * dials addresses"). Real sockets; the backoff runs on a manual clock.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { afterEach, describe, it } from "node:test";
import { ToolDb } from "../src/index.js";
import type { DialFailedEvent } from "../src/network/dialer.js";
import { NO_DIALER } from "../src/network/dialer.js";
import { CompositeNetwork } from "../src/network/composite-network.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { closeAll, waitUntil } from "./helpers/nodes.js";

const T = 10_000;
const RETRY_MS = 1000;

/** A loopback port nothing listens on (bound, then released): every dial of it is refused at once. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("dial targets when no open transport dials addresses", () => {
  const nodes: ToolDb[] = [];
  afterEach(() => closeAll(...nodes.splice(0)));

  it("are dialed through a transport still open, and given up (a final dial-failed) once none is", { timeout: 30_000 }, async () => {
    const clock = new ManualClock(Date.now());
    const port = await deadPort();
    const db = new ToolDb({ topic: "test", networkAdapter: [WebSocketNetwork, TcpNetwork], peers: [{ host: "127.0.0.1", port }], wait: RETRY_MS, maxReconnectDelay: RETRY_MS, random: () => 0, clock });
    nodes.push(db);
    const failures: DialFailedEvent[] = [];
    db.network.on("dial-failed", (e) => failures.push(e));
    await db.ready;
    const composite = db.network as CompositeNetwork;
    const waiting = (n: number) => waitUntil(() => failures.length >= n && db.network.dialTargets()[0]?.state === "waiting", T, `failure ${n}, waiting`);
    await waiting(1);
    assert.equal(failures[0]!.final, false);

    // The first transport that dials (WebSocket) closes: the target stays, and its next attempt goes through TCP.
    await composite.transport(WebSocketNetwork)!.close();
    assert.equal(db.network.canDial, true);
    assert.equal(db.network.dialTargets().length, 1);
    clock.advance(RETRY_MS);
    await waiting(2);
    assert.ok(failures.every((e) => !e.final && e.reason !== NO_DIALER), JSON.stringify(failures));

    // The last one closes: the target is given up at once, reported once as final, and never dialed again.
    await composite.transport(TcpNetwork)!.close();
    assert.equal(db.network.canDial, false);
    assert.deepEqual(db.network.dialTargets(), []);
    const last = failures.at(-1)!;
    assert.deepEqual({ host: last.host, port: last.port, final: last.final, reason: last.reason }, { host: "127.0.0.1", port, final: true, reason: NO_DIALER });
    const count = failures.length;
    for (let i = 0; i < 10; i++) clock.advance(RETRY_MS);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(failures.length, count, "no attempt after the target was given up");
    // A new target is refused as before (nothing dials addresses).
    db.network.connectTo("127.0.0.1", port);
    assert.deepEqual(db.network.dialTargets(), []);
  });
});
