/** Network compliance, part 2: one link per pair of nodes, however many dials or addresses lead there. */
import { it } from "node:test";
import assert from "node:assert/strict";
import type { PeerInfo } from "../../src/index.js";
import { record, waitFor } from "../helpers/wait.js";
import { type NetworkSuiteContext, T, connectLog, eventually, peerIdOf } from "./network-suite-context.js";

export function duplicateLinkTests({ factory, server, client, connect, cleanups }: NetworkSuiteContext): void {
  it("connectTo the same address twice gives one link", { timeout: 20_000 }, async () => {
    const srv = await server();
    const cli = await client(undefined);
    const srvConnects = record<[PeerInfo]>(srv, "peer-connect");
    const cliConnects = record<[PeerInfo]>(cli, "peer-connect");
    const linked = waitFor(cli, "peer-connect", T);
    connect(cli, srv);
    connect(cli, srv);
    await linked;
    connect(cli, srv); // and once more while connected
    // Two full round trips after the link opened: a second dial started
    // together with the first would have completed its handshake by now.
    for (const key of ["twice-1", "twice-2"]) {
      const got = waitFor(srv, "data", T, (r) => r.k === key);
      await cli.putData(key, key);
      await got;
      assert.equal(await cli.getData(key, false, T), key);
    }
    assert.equal(cli.network.dialTargets().length, 1, "one dial target");
    assert.equal(cli.network.peers.length, 1);
    assert.equal(srv.network.peers.length, 1);
    assert.equal(srvConnects.events.length, 1, "server saw one link");
    assert.equal(cliConnects.events.length, 1, "client saw one link");
    srvConnects.stop();
    cliConnects.stop();
  });

  it("two links between the same identities (mutual dial) collapse into one, the same on both ends", { timeout: 20_000 }, async () => {
    const a = await server();
    const b = await server();
    const aLog = connectLog(a);
    const bLog = connectLog(b);
    connect(a, b);
    connect(b, a);
    // The link dialed by the smaller address survives, on both ends.
    const aDials = a.nodeAddress() < b.nodeAddress();
    const settled = () => {
      const ab = a.network.session(peerIdOf(b));
      const ba = b.network.session(peerIdOf(a));
      const aTarget = a.network.dialTargets()[0];
      const bTarget = b.network.dialTargets()[0];
      return (
        a.network.peers.length === 1 &&
        b.network.peers.length === 1 &&
        ab !== undefined &&
        ba !== undefined &&
        ab.outgoing === aDials &&
        ba.outgoing === !aDials &&
        aTarget?.state === (aDials ? "connected" : "parked") &&
        bTarget?.state === (aDials ? "parked" : "connected")
      );
    };
    await eventually(settled, [a, b], "one link between a and b, dialed by the smaller address");
    const ab = a.network.session(peerIdOf(b));
    const ba = b.network.session(peerIdOf(a));

    // The surviving link carries traffic, and nothing re-dials behind it.
    const got = waitFor(b, "data", T, (r) => r.k === "mutual");
    await a.putData("mutual", 1);
    await got;
    const gotBack = waitFor(a, "data", T, (r) => r.k === "mutual-back");
    await b.putData("mutual-back", 2);
    await gotBack;
    assert.equal(a.network.session(peerIdOf(b)), ab, "a's session unchanged");
    assert.equal(b.network.session(peerIdOf(a)), ba, "b's session unchanged");
    assert.equal(aLog.connects - aLog.disconnects, 1, "a: every extra peer-connect was balanced by a peer-disconnect");
    assert.equal(bLog.connects - bLog.disconnects, 1, "b: every extra peer-connect was balanced by a peer-disconnect");
  });

  it("two addresses of the same node give one link; the parked address takes over when the first drops", { timeout: 20_000, skip: factory.alias ? false : "factory has no alias()" }, async () => {
    const srv = await server();
    const cli = await client(undefined);
    const alias = await factory.alias!(srv);
    cleanups.push(() => alias.close());
    const direct = factory.addressOf(srv);
    assert.notDeepEqual({ host: alias.host, port: alias.port }, direct, "alias must differ from the direct address");
    const srvConnects = record<[PeerInfo]>(srv, "peer-connect");
    const cliConnects = record<[PeerInfo]>(cli, "peer-connect");

    const first = waitFor(cli, "peer-connect", T);
    cli.network.connectTo(direct.host, direct.port);
    await first;
    cli.network.connectTo(alias.host, alias.port);
    const aliasTarget = () => cli.network.dialTargets().find((t) => t.host === alias.host && t.port === alias.port);
    await eventually(() => aliasTarget()?.state === "parked", [cli, srv], "the alias target to be parked");
    assert.equal(cli.network.peers.length, 1);
    assert.equal(srv.network.peers.length, 1);
    assert.equal(srvConnects.events.length, 1);
    assert.equal(cliConnects.events.length, 1);

    // Dropping the first address un-parks the alias.
    const again = waitFor(cli, "peer-connect", T);
    cli.network.disconnectFrom(direct.host, direct.port);
    const [info] = await again;
    assert.equal(info.peerId, peerIdOf(srv));
    await eventually(() => aliasTarget()?.state === "connected" && srv.network.peers.length === 1, [cli, srv], "the alias link");
    assert.equal(cli.network.peers.length, 1);
    srvConnects.stop();
    cliConnects.stop();
  });
}
