/**
 * close() and a password sign-in still waiting for the account record from
 * the network: close drains sign-ins (they write the saved keys), but the
 * lookup itself (up to 2 s) must not hold close. A linked peer that passed
 * the handshake and then answers nothing (a real socket) is asked; close()
 * ends the lookup at once and the sign-in rejects with CLOSED, changing no
 * user. The node runs on a clock that never moves (helpers/manual-clock.ts):
 * neither the lookup's timeout nor close's drain bound can fire, so close
 * settles only if it cut the lookup short.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ErrorCode, MemoryStore, ToolDb } from "../src/index.js";
import { activeResources, assertNoLeftovers, outcome, settlesWithin, TOOLDB_EVENTS, watchEmits } from "./helpers/lifecycle-probe.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { FAST, waitUntil } from "./helpers/nodes.js";
import { typed } from "./helpers/typed-error.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const unhandled = collectUnhandledRejections();
const TOPIC = "close-lookups";
const MS = 10_000;

after(() => assert.deepEqual(unhandled, [], "no unhandled rejection in the whole file"));

describe("close() during a sign-in's network lookup", { timeout: 60_000 }, () => {
  it("a peer that never answers: close() cuts the lookup short, signIn rejects with CLOSED before close resolves, nothing left", async () => {
    const handles = activeResources();
    const silent = await HostileServer.start(TOPIC);
    silent.silent = true;
    const clock = new ManualClock(Date.now());
    const db = new ToolDb({ topic: TOPIC, ...FAST, storageAdapter: MemoryStore, clock });
    await db.ready;
    db.network.connectTo("127.0.0.1", silent.port);
    await waitUntil(() => db.network.peerCount > 0 && silent.links.size > 0, MS, "the link to the silent peer");
    const before = db.userAccount.getAddress();
    const events = watchEmits(db as never, TOOLDB_EVENTS);

    const order: string[] = [];
    const signedIn = outcome(db.signIn("ghost", "password-1")).then((result) => (order.push(`signIn ${result}`), result));
    await waitUntil(() => silent.received.some((f) => f.type === "get" && f.key === "==ghost"), MS, "the lookup sent to the silent peer");
    const closing = db.close().then(() => void order.push("close"));
    await settlesWithin(closing, MS, "close with a sign-in waiting on a silent peer (the clock never moves)");
    events.closed();
    assert.deepEqual(order, ["signIn CLOSED", "close"], "the sign-in rejected with CLOSED, then close resolved");
    assert.equal(await signedIn, "CLOSED");
    assert.equal(db.userAccount.getAddress(), before, "the sign-in changed no user");
    await assert.rejects(db.signIn("ghost", "password-1"), typed(ErrorCode.CLOSED), "a sign-in after close");
    await silent.close();
    await assertNoLeftovers(handles, "close during a sign-in lookup");
    assert.deepEqual(events.late, [], "no event after close");
  });
});
