/** Network compliance, part 3: refusals reach the dialer; close() is idempotent and nothing fires after it. */
import { it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../../src/base/errors.js";
import { CloseCode } from "../../src/network/connection.js";
import type { DialFailedEvent } from "../../src/network/network-adapter.js";
import { record, waitFor, withTimeout } from "../helpers/wait.js";
import { type NetworkSuiteContext, T, bothLinked, eventually, lateEvents, linkedClients, peerIdOf } from "./network-suite-context.js";

export function closingTests({ factory, server, client, connect }: NetworkSuiteContext): void {
  it("a topic mismatch closes the link; the reason reaches the dialer's dial-failed (4001, final)", { timeout: 20_000 }, async () => {
    const srv = await server();
    const cli = await client(undefined, { topic: "another-topic-entirely" });
    const srvConnects = record(srv, "peer-connect");
    const cliConnects = record(cli, "peer-connect");
    const refused = waitFor(srv, "refused", T, (e) => e.code === ErrorCode.TOPIC_MISMATCH);
    const failed = waitFor(cli, "dial-failed", T);
    const { host, port } = factory.addressOf(srv);
    cli.network.connectTo(host, port);
    const [[event], [refusal]] = await Promise.all([failed, refused]);
    assert.deepEqual(
      { host: event.host, port: event.port, code: event.code, final: event.final },
      { host, port, code: CloseCode.TOPIC_MISMATCH, final: true } satisfies Omit<DialFailedEvent, "reason">,
    );
    assert.match(event.reason, /topic/i);
    assert.match(refusal.reason, /topic/i);
    assert.deepEqual(cli.network.dialTargets(), [], "no further attempts are scheduled");
    assert.equal(srvConnects.events.length, 0);
    assert.equal(cliConnects.events.length, 0);
    assert.equal(srv.network.peers.length, 0);
    assert.equal(cli.network.peers.length, 0);
    srvConnects.stop();
    cliConnects.stop();
  });

  it("server close() is idempotent, closes every link, and nothing fires after it", { timeout: 20_000 }, async () => {
    const srv = await server();
    const [c1, c2] = await linkedClients(client, srv, 2);
    const late = lateEvents(srv);
    const gone1 = waitFor(c1, "peer-disconnect", T, (i) => i.peerId === peerIdOf(srv));
    const gone2 = waitFor(c2, "peer-disconnect", T, (i) => i.peerId === peerIdOf(srv));

    late.closing = true;
    const p1 = srv.close();
    const p2 = srv.close();
    assert.equal(p1, p2, "concurrent close() calls share one promise");
    await withTimeout(Promise.all([p1, p2]), T, "server close");
    await withTimeout(srv.close(), T, "a third close()");
    await Promise.all([gone1, gone2]);

    assert.equal(srv.isClosed, true);
    assert.equal(srv.network.peers.length, 0);
    srv.network.connectTo("127.0.0.1", 9); // no-op after close
    assert.deepEqual(srv.network.dialTargets(), []);
    assert.deepEqual(late.fired, [], "events fired after close()");
  });

  it("client close() is idempotent, the server sees the disconnect, and nothing fires after it", { timeout: 20_000 }, async () => {
    const srv = await server();
    const other = await server();
    const cli = await client(srv);
    connect(cli, other);
    await bothLinked(srv, cli);
    await bothLinked(other, cli);
    const late = lateEvents(cli);
    const gone = waitFor(srv, "peer-disconnect", T, (i) => i.peerId === peerIdOf(cli));
    const gone2 = waitFor(other, "peer-disconnect", T, (i) => i.peerId === peerIdOf(cli));
    late.closing = true;
    await withTimeout(Promise.all([cli.close(), cli.close()]), T, "client close");
    await Promise.all([gone, gone2]);
    await withTimeout(cli.close(), T, "a third close()");
    assert.equal(cli.network.peers.length, 0);
    assert.deepEqual(cli.network.dialTargets(), [], "no dialer survives close()");
    assert.deepEqual(late.fired, [], "events fired after close()");
  });

  it("close() before any link, and while a dial is in flight, resolves and leaves nothing behind", { timeout: 20_000 }, async () => {
    const lonely = await client(undefined);
    await withTimeout(lonely.close(), T, "close without links");
    const srv = await server();
    const cli = await client(undefined);
    const late = lateEvents(cli);
    late.closing = true;
    connect(cli, srv);
    await withTimeout(cli.close(), T, "close during a dial");
    assert.deepEqual(cli.network.dialTargets(), []);
    assert.deepEqual(late.fired, []);
    // The server may or may not have seen the half-open link; either way it ends.
    await eventually(() => srv.network.peers.length === 0, [srv], "server without links");
  });
}
