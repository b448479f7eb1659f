/** Network compliance, part 1: a link opens, carries messages both ways, and its end is reported on both sides. */
import { it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/wait.js";
import { type NetworkSuiteContext, T, assertLastLinkGone, bothLinked, hookRecorder, linkedClients, peerIdOf } from "./network-suite-context.js";

export function linkTests({ server, client, connect }: NetworkSuiteContext): void {
  it("client(server) connects on its own", { timeout: 20_000 }, async () => {
    const srv = await server();
    const cli = await client(srv);
    await bothLinked(srv, cli);
    assert.equal(cli.network.peers.length, 1);
    assert.equal(srv.network.peers.length, 1);
  });

  it("handshake completes and peer-connect / onPeerConnect fire on both ends with the other's peer id", { timeout: 20_000 }, async () => {
    const srv = await server();
    const cli = await client(undefined);
    const s = hookRecorder(srv);
    const c = hookRecorder(cli);
    const srvConnect = waitFor(srv, "peer-connect", T);
    const cliConnect = waitFor(cli, "peer-connect", T);
    connect(cli, srv);
    const [[fromSrv], [fromCli]] = await Promise.all([srvConnect, cliConnect]);

    assert.equal(fromSrv.peerId, peerIdOf(cli));
    assert.equal(fromSrv.address, cli.nodeAddress());
    assert.equal(fromSrv.isServer, false);
    assert.equal(fromSrv.outgoing, false);
    assert.equal(fromCli.peerId, peerIdOf(srv));
    assert.equal(fromCli.address, srv.nodeAddress());
    assert.equal(fromCli.isServer, true);
    assert.equal(fromCli.outgoing, true);

    assert.deepEqual(s.calls.onPeerConnect, [peerIdOf(cli)]);
    assert.deepEqual(c.calls.onPeerConnect, [peerIdOf(srv)]);
    assert.equal(s.calls.onConnect.length, 1);
    assert.equal(c.calls.onConnect.length, 1);
    assert.equal(srv.isConnected, true);
    assert.equal(cli.isConnected, true);
    assert.equal(srv.network.session(peerIdOf(cli))?.address, cli.nodeAddress());
    assert.equal(cli.network.session(peerIdOf(srv))?.address, srv.nodeAddress());
    assert.equal(cli.network.getClientAddress(), peerIdOf(cli));
  });

  for (const closing of ["client", "server"] as const) {
    const other = closing === "client" ? "server" : "client";
    it(`when the ${closing} closes, the ${other} fires peer-disconnect, onPeerDisconnect and onDisconnect`, { timeout: 20_000 }, async () => {
      const srv = await server();
      const cli = await client(srv);
      await bothLinked(srv, cli);
      const [leaving, staying] = closing === "client" ? [cli, srv] : [srv, cli];
      const hooks = hookRecorder(staying);
      const gone = waitFor(staying, "peer-disconnect", T);
      const last = waitFor(staying, "disconnect", T);
      const leavingId = peerIdOf(leaving);
      await leaving.close();
      const [[info]] = await Promise.all([gone, last]);
      assertLastLinkGone(staying, hooks.calls, leavingId, info);
    });
  }

  it("the disconnect hooks fire only for the last link going away", { timeout: 20_000 }, async () => {
    const srv = await server();
    const [c1, c2] = await linkedClients(client, srv, 2);
    const s = hookRecorder(srv);
    const first = waitFor(srv, "peer-disconnect", T);
    await c1.close();
    await first;
    assert.equal(s.calls.onDisconnect.length, 0, "one peer is still linked");
    assert.equal(srv.isConnected, true);
    const second = waitFor(srv, "disconnect", T);
    await c2.close();
    await second;
    assert.deepEqual(s.calls.onPeerDisconnect, [peerIdOf(c1), peerIdOf(c2)]);
    assert.equal(s.calls.onDisconnect.length, 1);
  });

  it("messages flow both ways: puts are stored on the other end, gets are answered", { timeout: 20_000 }, async () => {
    const srv = await server();
    await srv.putData("only-on-server", { side: "server", before: true });
    const cli = await client(srv);
    await bothLinked(srv, cli);

    // client -> server
    const stored = waitFor(srv, "put", T, (m) => m.data.k === "from-client");
    await cli.putData("from-client", { n: 1 });
    const [{ data: rec }, from] = await stored;
    assert.deepEqual(rec.v, { n: 1 });
    assert.equal(from, peerIdOf(cli));
    assert.deepEqual((await srv.records.get("from-client"))?.v, { n: 1 });

    // server -> client
    const pushed = waitFor(cli, "put", T, (m) => m.data.k === "from-server");
    await srv.putData("from-server", "hello client");
    const [{ data: back }, via] = await pushed;
    assert.equal(back.v, "hello client");
    assert.equal(via, peerIdOf(srv));
    assert.equal((await cli.records.get("from-server"))?.v, "hello client");

    // request / reply
    assert.deepEqual(await cli.getData("only-on-server", false, T), { side: "server", before: true });
  });
}
