/**
 * Fuzzing the wire: at least 10,000 generated frames per transport and run
 * (seeded: FUZZ_SEED, FUZZ_FRAMES), sent before and after the handshake by
 * raw clients to a server with its default limits. Afterwards: no crash, no
 * unhandled rejection, no prototype pollution, every record stored before
 * is intact, every link was released, and a legitimate client is served.
 * A short flood checks that the connection limits engage (by counts).
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode } from "../src/base/errors.js";
import type { ToolDbRecord } from "../src/records/record.js";
import type { ToolDb } from "../src/node/tooldb.js";
import type { NetworkAdapterConstructor, RefusalEvent } from "../src/network/network-adapter.js";
import { TcpNetwork } from "../src/network/tcp-network.js";
import { WebSocketNetwork } from "../src/network/websocket-network.js";
import { FrameFuzzer, type FuzzFrame, type FuzzMessage, seededRandom } from "./helpers/fuzz-frames.js";
import { closeAll, portOf, startClient, startServer, waitUntil } from "./helpers/nodes.js";
import { RawLink, type RawLinkOptions, type RawPeerLink, RawTcpLink, rawIdentity, signedPing, terminateRawLinks } from "./helpers/raw-peer.js";
import { record, withTimeout } from "./helpers/wait.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000);
const TOPIC = "fuzz";
const T = 10_000;
/** Frames per link before it is probed (and, after the handshake, before strikes close it anyway). */
const BATCH = 12;

const unhandled = collectUnhandledRejections();
afterEach(() => terminateRawLinks());

interface Transport {
  name: string;
  adapter: NetworkAdapterConstructor;
  open(port: number, opts: RawLinkOptions): Promise<RawPeerLink>;
  /** Bytes that break the transport's own framing, if it has one. */
  garbage?(link: RawPeerLink, rnd: () => number): void;
}

const TRANSPORTS: Transport[] = [
  { name: "WebSocket", adapter: WebSocketNetwork, open: (port, opts) => RawLink.open(port, opts) },
  {
    name: "TCP stream",
    adapter: TcpNetwork,
    open: (port, opts) => RawTcpLink.open(port, opts),
    garbage: (link, rnd) => {
      const header = Buffer.alloc(5);
      header.writeUInt32BE(rnd() < 0.5 ? 0 : Math.floor(rnd() * 2 ** 32), 0);
      header[4] = Math.floor(rnd() * 256);
      (link as RawTcpLink).sendRaw(header);
    },
  },
];

/** Valid messages of every type, built on the server's own records: the fuzzer mutates them. */
async function corpus(srv: ToolDb, records: ToolDbRecord[]): Promise<FuzzMessage[]> {
  const someone = await rawIdentity();
  const ping = await signedPing(someone, TOPIC);
  const [first] = records;
  return [
    ...records.map((data, i) => ({ type: "put", id: `p${i}`, to: [], data })),
    { type: "put", id: "pa", to: [], ack: true, data: first },
    { type: "get", id: "g", to: [], key: first!.k },
    { type: "subscribe", id: "s", to: [], key: first!.k },
    { type: "query", id: "q", to: [], key: "" },
    { type: "queryAck", id: "qa", to: [], keys: records.map((r) => r.k) },
    { type: "function", id: "f", to: [], function: "echo", args: { a: 1 } },
    { type: "functionReturn", id: "fr", to: [], code: "OK", return: 1 },
    { type: "putAck", id: "pk", to: [], stored: [first!.h], refused: [{ h: first!.h, reason: "x" }] },
    { ...ping },
    { type: "pong", id: "po", to: [], clientId: someone.clientId, isServer: true, servers: [ping.peer], peer: ping.peer },
  ];
}

function send(link: RawPeerLink, frame: FuzzFrame): void {
  if ("bytes" in frame) link.sendBytes(frame.bytes);
  else link.send(frame.text);
}

describe("fuzzed frames on every transport", () => {
  for (const transport of TRANSPORTS) {
    it(`${transport.name}: ${FRAMES.toLocaleString("en")} fuzzed frames before and after the handshake: no crash, data intact, still serving`, { timeout: 240_000 }, async (t) => {
      const srv = await startServer({ topic: TOPIC, networkAdapter: transport.adapter });
      let client: ToolDb | undefined;
      try {
        srv.addServerFunction("echo", (args) => args);
        await srv.putData("precious", { v: "original" });
        await srv.putData("mine", [1, 2, 3], true);
        await srv.signUp("operator", "pw");
        const keys = await srv.records.query("");
        const before = new Map<string, ToolDbRecord>();
        for (const k of keys) before.set(k, (await srv.records.get(k))!);
        const fuzzer = new FrameFuzzer(SEED, await corpus(srv, [...before.values()]));
        const rnd = seededRandom(SEED ^ 0x5eed);
        const refusals = record<[RefusalEvent]>(srv, "refused");
        const kinds = new Map<string, number>();
        const port = portOf(srv);
        let sent = 0;
        let links = 0;
        let answered = 0;

        while (sent < FRAMES) {
          const afterHandshake = rnd() < 0.7;
          const link = await transport.open(port, { topic: TOPIC });
          links++;
          if (afterHandshake) await link.handshake();
          for (let i = 0; i < BATCH && !link.isClosed; i++) {
            if (transport.garbage && rnd() < 0.01) transport.garbage(link, rnd);
            const frame = fuzzer.next();
            kinds.set(frame.kind, (kinds.get(frame.kind) ?? 0) + 1);
            send(link, frame);
            sent++;
          }
          // Liveness: the server answers a probe (frames on a link are handled in order) or has closed the link.
          const probe = afterHandshake ? link.get("precious", T).then(() => answered++) : link.handshake().then(() => answered++);
          await withTimeout(Promise.race([probe, link.waitClose(T)]), T, `probe answer or close after ${sent} frames`).catch((err) => {
            if (!link.isClosed) throw err;
          });
          link.terminate();
          if (links % 200 === 0) t.diagnostic(`${transport.name}: ${sent} frames on ${links} links`);
        }
        refusals.stop();

        // Every link is released: nothing leaked in the gate or the intake.
        const { gate, intake } = srv.network.guard;
        await waitUntil(() => gate.counts.unverified === 0 && gate.counts.verified === 0 && intake!.inFlight === 0, T, "links and messages released");
        assert.deepEqual(unhandled.splice(0), [], "unhandled rejections");
        assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype polluted");
        for (const [k, rec] of before) assert.deepEqual(await srv.records.get(k), rec, `record ${k} changed`);

        // A legitimate client is served afterwards.
        client = await startClient([srv], { topic: TOPIC, networkAdapter: transport.adapter });
        assert.deepEqual(await client.getData("precious"), { v: "original" });
        await client.putData("after-fuzz", "ok");
        await waitUntil(async () => (await srv.records.get("after-fuzz"))?.v === "ok", T, "the client's put on the server");

        const byCode = new Map<string, number>();
        for (const [e] of refusals.events) byCode.set(e.code, (byCode.get(e.code) ?? 0) + 1);
        t.diagnostic(`${transport.name}: seed ${SEED}, ${sent} frames on ${links} links (${answered} probes answered); kinds ${JSON.stringify(Object.fromEntries(kinds))}`);
        t.diagnostic(`${transport.name}: refusals ${JSON.stringify(Object.fromEntries(byCode))}`);
        assert.ok(sent >= FRAMES);
        assert.ok(refusals.events.length > 0, "the server refused something");
      } finally {
        await closeAll(client, srv);
      }
    });
  }
});

describe("a short flood engages the limits (counts, not timings)", () => {
  it("300 unfinished handshakes from one IP and 60 from spread IPs: per-IP refusals and handshake evictions; a client still links", async () => {
    // No handshake times out during the test: the counts depend on the limits alone.
    const srv = await startServer({ topic: TOPIC, handshakeTimeout: 120_000, limits: { maxConnectionsPerIp: 20, maxUnverifiedConnections: 40, exemptIps: [] } });
    let client: ToolDb | undefined;
    try {
      const refusals = record<[RefusalEvent]>(srv, "refused");
      const port = portOf(srv);
      const id = await rawIdentity();
      for (let i = 0; i < 300; i++) await RawLink.open(port, { topic: TOPIC, from: "127.0.0.20", id });
      for (let i = 0; i < 60; i++) await RawLink.open(port, { topic: TOPIC, from: `127.0.1.${1 + (i % 30)}`, id });
      await waitUntil(() => refusals.events.length >= 280 + 40, T, "refusals");
      const reasons = refusals.events.map(([e]) => e).filter((e) => e.code === ErrorCode.CONNECTION_LIMIT);
      // 20 of the 300 fit their IP's cap; with 60 more, 80 links wanted 40 handshake slots: 40 evicted.
      assert.equal(reasons.filter((e) => /too many links from 127\.0\.0\.20 \(20\)/.test(e.reason)).length, 280);
      assert.equal(reasons.filter((e) => /evicted/.test(e.reason)).length, 40);
      assert.deepEqual(srv.network.guard.gate.counts, { verified: 0, unverified: 40, ips: 30 });
      client = await startClient([srv], { topic: TOPIC });
      assert.equal(srv.network.guard.gate.counts.verified, 1);
      refusals.stop();
    } finally {
      terminateRawLinks();
      await closeAll(client, srv);
    }
  });
});
