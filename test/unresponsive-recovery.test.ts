/**
 * A server a client dropped as unresponsive once (it left the client's
 * queries unanswered during a fault) and that then answers well again gets
 * its normal rank back after a good spell (`unresponsiveRecovery`) on a new
 * link: a `server-recovered` event, and ServerSelection, DhtPeering and the
 * dialer forget the drop. Before, the penalty stayed for as long as the
 * client ran. Real sockets on loopback; small injected bounds; probes off,
 * so only the client's own queries judge the server.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ToolDb, type PeerInfo } from "../src/index.js";
import { CloseCode } from "../src/network/connection.js";
import { ServerSelection } from "../src/peering/server-selection.js";
import { DhtPeering, type PeerSource } from "../src/peering/dht-peering.js";
import { FAST, portOf, waitUntil } from "./helpers/nodes.js";
import { HostileServer } from "./helpers/hostile-server.js";
import { teardownEach } from "./helpers/teardown.js";

const TOPIC = "recovery";
const SILENCE_MS = 1500;
const RECOVERY_MS = 1000;
/** The first wait before a dropped server is dialed again (`unresponsivePenalty`, DhtPeering's `penaltyMs`; 5 s by default). */
const PENALTY_MS = 1000;

/** A server that answers queries, probes and acknowledged puts while `good`, and nothing but server-list pings otherwise. */
async function flakyServer(): Promise<HostileServer & { good: boolean }> {
  const h = Object.assign(await HostileServer.start(TOPIC, "127.0.0.10"), { good: false });
  h.onFrame = (link, f) => {
    if (!h.good) return;
    if (f.type === "query") link.send({ type: "queryAck", id: f.id, to: [], keys: [] });
    if (f.type === "function") link.send({ type: "functionReturn", id: f.id, to: [], code: "NOT_FOUND", return: "Function not found" });
    const hash = (f.data as { h?: unknown } | undefined)?.h;
    if (f.type === "put" && f.ack === true && typeof hash === "string") link.send({ type: "putAck", id: `a${f.id as string}`.slice(0, 60), to: [], stored: [hash] });
  };
  return h;
}

type Picker = "selection" | "dht" | "peers";

describe("a server dropped once, then answering well, gets its rank back", () => {
  const { nodes, stops, closers: flaky } = teardownEach();

  for (const picker of ["selection", "dht", "peers"] as const) {
    it(`${picker}: one drop, then a good spell: forgiven once, after the spell's length`, { timeout: 60_000 }, async () => {
      const honest = new ToolDb({ server: true, host: "127.0.0.3", port: 0, topic: TOPIC, ...FAST });
      nodes.push(honest);
      await honest.ready;
      const f = await flakyServer();
      flaky.push(f);
      const goodPort = portOf(honest);
      const peers = picker === "peers" ? [{ host: "127.0.0.10", port: f.port }, { host: "127.0.0.3", port: goodPort }] : [];
      const db = new ToolDb({ topic: TOPIC, ...FAST, storageName: `recovery-${Math.random()}`, unresponsiveTimeout: SILENCE_MS, serverProbeInterval: 0, unresponsiveRecovery: RECOVERY_MS, unresponsivePenalty: PENALTY_MS, peers });
      nodes.push(db);
      await db.ready;
      const closes: number[] = [];
      let droppedAt = 0; // when the client dropped the flaky server, from its own event (a poll after it is late on a loaded box)
      let receivedAtDrop = 0; // frames the flaky server had heard by then
      db.on("peer-disconnect", (info) => {
        if (info.host !== "127.0.0.10") return;
        closes.push(info.code);
        if (info.code !== CloseCode.UNRESPONSIVE || droppedAt !== 0) return;
        droppedAt = Date.now();
        receivedAtDrop = f.received.length;
      });
      const recovered: Array<PeerInfo & { drops: number; at: number }> = [];
      db.on("server-recovered", (info) => recovered.push({ ...info, at: Date.now() }));
      let linkedAt = 0; // the flaky server's latest link, as the client opened it (its spell starts there)
      db.on("peer-connect", (info) => void (info.host === "127.0.0.10" && (linkedAt = Date.now())));
      // What happened to the flaky server since its drop, said when a wait fails (a CI run timed out waiting for the
      // redial under DHT peering, which 54 runs here never did): where the redial stopped, the next time.
      const events: string[] = [];
      db.on("dial-failed", (e) => void (e.host === "127.0.0.10" && events.push(`dial-failed ${e.code} ${e.reason} final=${e.final}`)));
      db.on("refused", (r) => void events.push(`refused ${r.code} ${r.reason}`));
      const { penalty, held } = await pick(picker, db, f, goodPort);
      const state = () => {
        const now = Date.now();
        const since = droppedAt === 0 ? undefined : now - droppedAt;
        const targets = db.network.dialTargets().map((t) => `${t.host}:${t.port} ${t.state}`);
        const links = db.network.peers.map((p) => `${p.host}:${p.port}${p.outgoing ? "" : " in"}`);
        const heard: Record<string, number> = {};
        for (const m of f.received.slice(receivedAtDrop)) heard[String(m.type)] = (heard[String(m.type)] ?? 0) + 1;
        return JSON.stringify({ since, targets, links, picker: held(db.monotonic()), hostile: { links: f.links.size, handshakes: f.handshakes, heard }, events: events.slice(-10) });
      };
      const explained = (err: Error) => {
        throw new Error(`${err.message}; ${state()}`);
      };
      await waitUntil(() => f.links.size === 1 && db.network.peers.length === 2, 5000, "both servers linked");

      // The fault: the flaky server leaves the client's queries unanswered, and is dropped.
      const querying = setInterval(() => void db.queryKeys("q", false, 150).catch(() => undefined), 200);
      stops.push(() => clearInterval(querying));
      await waitUntil(() => closes.includes(CloseCode.UNRESPONSIVE), 3 * SILENCE_MS + 2000, "the flaky server dropped as unresponsive");
      assert.equal(penalty(), 1, "one drop held against it");
      assert.equal(db.serverWatch.dropsOf(f.id.address), 1);

      // It answers well again: linked after its penalty, forgiven after a good spell there.
      f.good = true;
      await waitUntil(() => f.links.size === 0, 5000, "the dropped link closed at the flaky server").catch(explained);
      await waitUntil(() => f.links.size === 1 && linkedAt > droppedAt, 10_000, "the flaky server linked again after its penalty").catch(explained);
      const waited = linkedAt - droppedAt;
      assert.ok(waited >= PENALTY_MS - 50 && waited < PENALTY_MS + 3000, `linked again ${waited} ms after the drop, its penalty ${PENALTY_MS} ms`);
      await waitUntil(() => recovered.length > 0, RECOVERY_MS + 5000, "the server forgiven");
      assert.ok(recovered[0]!.at - linkedAt >= RECOVERY_MS, `forgiven ${recovered[0]!.at - linkedAt} ms after the new link, not before the spell's ${RECOVERY_MS} ms`);
      assert.equal(recovered[0]!.host, "127.0.0.10");
      assert.equal(recovered[0]!.drops, 0);
      assert.equal(penalty(), 0, "its normal rank back");
      assert.equal(db.serverWatch.dropsOf(f.id.address), 0);
      // Another spell forgives nothing more: there is nothing left to forgive.
      await new Promise((r) => setTimeout(r, RECOVERY_MS + 500));
      assert.equal(recovered.length, 1);
      assert.equal(closes.filter((c) => c === CloseCode.UNRESPONSIVE).length, 1);
    });
  }

  /** Starts `picker` on `db` with the flaky server first; returns a reading of the drops it holds against the flaky server, and of what it holds of it. */
  async function pick(picker: Picker, db: ToolDb, f: HostileServer, goodPort: number): Promise<{ penalty: () => number; held: (monotonicNow: number) => unknown }> {
    if (picker === "selection") {
      const sel = new ServerSelection(db, { links: 2, cache: false, refreshInterval: 60_000 });
      stops.push(() => sel.close());
      await sel.ready;
      sel.addServer(f.url);
      sel.addServer(`ws://127.0.0.3:${goodPort}`);
      const entry = () => sel.list().find((s) => s.url === f.url)!;
      const penalty = () => {
        if (entry().unresponsive === undefined) assert.equal(entry().until, undefined, "no wait left");
        return entry().unresponsive ?? 0;
      };
      const held = (now: number) => {
        const { state, failures, unresponsive, until } = entry();
        return { state, failures, unresponsive, untilIn: until === undefined ? undefined : until - now };
      };
      return { penalty, held };
    }
    if (picker === "dht") {
      const found = [{ host: "127.0.0.10", port: f.port }, { host: "127.0.0.3", port: goodPort }];
      const source: PeerSource = { on: () => undefined, off: () => undefined, peers: () => found, refresh: () => false, forget: () => false };
      const peering = new DhtPeering(db, source, TOPIC, { maxConnections: 2, dialRetries: 3, penaltyMs: PENALTY_MS, random: () => 0 });
      stops.push(() => peering.stop());
      const entry = () => peering.candidates().find((c) => c.host === "127.0.0.10");
      const held = (now: number) => {
        const c = entry();
        return c && { tier: c.tier, untilIn: c.until - now, resting: c.restUntil > now, silence: c.silence?.attempts, failures: c.backoff?.attempts };
      };
      return { penalty: () => entry()?.silence?.attempts ?? 0, held };
    }
    const target = () => db.network.dialTargets().find((t) => t.host === "127.0.0.10");
    return { penalty: () => target()?.unresponsive ?? 0, held: () => target() && { ...target(), address: undefined } };
  }
});
