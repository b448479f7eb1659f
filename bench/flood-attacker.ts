/**
 * Child process of the flood benchmark: hostile peers on loopback
 * (127.0.0.x and 127.0.1.x stand in for other hosts). On "start" it floods
 * one server with one kind of traffic until "stop", reconnecting under a
 * fresh identity when the server drops a link; it answers with what it sent.
 */
import { EcdsaUser, type ToolDbRecord } from "../src/index.js";
import { RawLink } from "../test/helpers/raw-peer.js";
import { type AbuseCounts, startAbuse } from "./flood-abuse.js";
import { presign } from "./presign.js";

type Kind = "puts" | "gets" | "subscriptions" | "handshakes" | "sync-abuse" | "slots" | "never-reading";
const TOPIC = "flood";
const MAX_BUFFERED = 1 << 20;

let stopped = true;
/** Bumped by every start and stop: a peer loop of an earlier flood ends. */
let generation = 0;
let sent = 0;
let reconnects = 0;
/** Counts of the budget attacks (flood-abuse.ts). */
let abuse: AbuseCounts = { sent: 0, reconnects: 0, bytesIn: 0 };
const links = new Set<RawLink>();
let records: ToolDbRecord[] = [];

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(port: number, from: string, handshake: boolean): Promise<RawLink | undefined> {
  try {
    const link = await RawLink.open(port, { topic: TOPIC, from });
    links.add(link);
    return handshake ? await link.handshake() : link;
  } catch {
    return undefined;
  }
}

/** One hostile peer: sends `next()` frames as fast as its socket drains; a new identity when dropped. */
async function peer(port: number, from: string, next: (n: number) => object): Promise<void> {
  let n = 0;
  const mine = generation;
  const live = () => !stopped && generation === mine;
  while (live()) {
    const link = await open(port, from, true);
    while (link && live() && !link.isClosed) {
      if (link.ws.bufferedAmount > MAX_BUFFERED) {
        await pause(2);
        continue;
      }
      for (let i = 0; i < 64; i++, sent++) link.send(next(n++) as Record<string, unknown>);
      await new Promise((r) => setImmediate(r));
    }
    if (link) {
      link.terminate();
      links.delete(link);
    }
    if (live()) {
      reconnects++;
      await pause(20);
    }
  }
}

async function start(kind: Kind, port: number, count: number): Promise<void> {
  stopped = false;
  generation++;
  sent = 0;
  reconnects = 0;
  abuse = { sent: 0, reconnects: 0, bytesIn: 0 };
  const mine = generation;
  if (await startAbuse(kind, { live: () => !stopped && generation === mine, counts: abuse, links }, port, count)) return;
  if (kind === "handshakes") {
    // `count` sockets that never send a ping, spread over 100 addresses.
    for (let i = 0; i < count && !stopped; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(port, `127.0.1.${1 + ((i + j) % 100)}`, false)));
      sent = Math.min(count, i + 100);
    }
    return;
  }
  if (kind === "puts" && records.length === 0) {
    const author = new EcdsaUser();
    await author.ready;
    records = await presign(author, 20_000, Date.now() - 10 * 60_000, "flood-", 5000);
  }
  const frame: Record<"puts" | "gets" | "subscriptions", (n: number, p: number) => object> = {
    puts: (n) => ({ type: "put", id: `fp${Math.random()}`, to: [], data: records[n % records.length] }),
    gets: (n) => ({ type: "get", id: `fg${Math.random()}`, to: [], key: n % 2 ? `k${n % 5000}` : `missing-${n}` }),
    subscriptions: (n, p) => ({ type: "subscribe", id: `fs${Math.random()}`, to: [], key: `sub-${p}-${n}` }),
  };
  const make = frame[kind as keyof typeof frame];
  for (let p = 0; p < count; p++) void peer(port, `127.0.0.${10 + p}`, (n) => make(n, p));
}

process.on("message", async (msg: { type: string; kind: Kind; port: number; count: number }) => {
  if (msg.type === "start") {
    await start(msg.kind, msg.port, msg.count);
    process.send!({ type: "start" });
  } else if (msg.type === "stop") {
    stopped = true;
    generation++;
    const open = [...links].filter((l) => !l.isClosed).length;
    for (const link of links) link.terminate();
    links.clear();
    process.send!({ type: "stop", sent: sent + abuse.sent, reconnects: reconnects + abuse.reconnects, bytesIn: abuse.bytesIn, open });
  } else if (msg.type === "exit") {
    process.disconnect();
  }
});
