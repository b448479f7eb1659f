/**
 * The flood benchmark's attacks on budgets (issues 23 and 25), run in the
 * attacker process (flood-attacker.ts):
 * - "sync-abuse": a peer that says it is a server lists every id through the
 *   change feed and fetches the whole store, under a fresh identity each
 *   round, from one address; the bytes it gets are counted;
 * - "slots": 1,100 handshaken sessions from 40 addresses, held idle;
 * - "never-reading": 100 peers that ask for a 900 KB record again and again
 *   and never read, reconnecting under a fresh identity when dropped.
 */
import { RBSR_CAPABILITY } from "../src/node/sync/range-sync.js";
import { CHANGES_CAPABILITY } from "../src/node/sync/change-sync.js";
import { type Frame, RawLink } from "../test/helpers/raw-peer.js";

const TOPIC = "flood";
const T = 30_000;

/** What an attack reports back: frames/sockets sent, reconnects, bytes the attacker received. */
export interface AbuseCounts {
  sent: number;
  reconnects: number;
  bytesIn: number;
}

export interface AbuseContext {
  live(): boolean;
  counts: AbuseCounts;
  links: Set<RawLink>;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(ctx: AbuseContext, port: number, from: string, server: boolean): Promise<RawLink | undefined> {
  try {
    const link = await RawLink.open(port, { topic: TOPIC, from });
    ctx.links.add(link);
    link.ws.on("message", (data: Buffer) => (ctx.counts.bytesIn += data.length));
    if (!server) return await link.handshake();
    await link.provenHandshake({ isServer: true, caps: [RBSR_CAPABILITY, CHANGES_CAPABILITY] });
    return link;
  } catch {
    return undefined;
  }
}

async function ask(link: RawLink, message: Frame & { type: string }): Promise<Frame> {
  const id = `${message.type}-${Math.random()}`;
  const reply = link.next((f) => f.id === id, T);
  link.send({ to: [], ...message, id });
  return reply;
}

/** One round: list every id through the change feed, fetch them all; a fresh identity from the same address each round. */
async function syncAbuse(ctx: AbuseContext, port: number): Promise<void> {
  while (ctx.live()) {
    const link = await open(ctx, port, "127.0.0.60", true);
    try {
      if (!link) continue;
      const head = await ask(link, { type: "syncChanges" });
      const ids: string[] = [];
      for (let s = 0, more = true; more && ctx.live(); ) {
        const page = await ask(link, { type: "syncChanges", e: head.e, s });
        if (page.error) break;
        ids.push(...(page.ids as string[]));
        more = page.more === true && (page.next as number) > s;
        s = page.next as number;
      }
      for (let i = 0; i < ids.length && ctx.live(); i += 1024) {
        const reply = await ask(link, { type: "syncFetch", ids: ids.slice(i, i + 1024) });
        ctx.counts.sent++;
        if (reply.error) break;
      }
    } catch {
      // a dropped link or an unanswered request: next round
    } finally {
      link?.terminate();
      if (link) ctx.links.delete(link);
      ctx.counts.reconnects++;
    }
    await pause(10);
  }
}

/** `count` handshaken sessions from 40 addresses, held idle until stop. */
async function fillSlots(ctx: AbuseContext, port: number, count: number): Promise<void> {
  for (let i = 0; i < count && ctx.live(); i += 40) {
    await Promise.all(Array.from({ length: Math.min(40, count - i) }, (_, j) => open(ctx, port, `127.0.0.${10 + j}`, false)));
    ctx.counts.sent = Math.min(count, i + 40);
  }
}

/** One peer that asks for the big record again and again and never reads; a fresh identity when dropped. */
async function neverReader(ctx: AbuseContext, port: number, from: string): Promise<void> {
  while (ctx.live()) {
    const link = await open(ctx, port, from, false);
    if (!link) {
      await pause(50);
      continue;
    }
    link.ws.pause();
    while (ctx.live() && !link.isClosed && link.ws.readyState === link.ws.OPEN) {
      for (let i = 0; i < 8; i++, ctx.counts.sent++) link.send({ type: "get", id: `nr-${Math.random()}`, to: [], key: "big" });
      await pause(100);
    }
    link.terminate();
    ctx.links.delete(link);
    if (ctx.live()) {
      ctx.counts.reconnects++;
      await pause(100);
    }
  }
}

export async function startAbuse(kind: string, ctx: AbuseContext, port: number, count: number): Promise<boolean> {
  if (kind === "sync-abuse") void syncAbuse(ctx, port);
  else if (kind === "slots") await fillSlots(ctx, port, count);
  else if (kind === "never-reading") for (let p = 0; p < count; p++) void neverReader(ctx, port, `127.0.3.${1 + (p % 4)}`);
  else return false;
  return true;
}
