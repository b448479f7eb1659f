/**
 * A page whose honest server relays a busy key while Sybil links (hostile
 * servers here; WebRTC peers go through the same intake) hold the rest of
 * its intake's bound (found in review of the bound across links,
 * network/client-shedding.ts).
 *
 * - Past the total (48 MiB), the link holding the most let go of its records
 *   and of every later one until a whole second passed without one. Two
 *   Sybil links holding 15 MiB waiting each made the honest link, at 17.5
 *   MiB, the largest: it then let go of every update it relayed for as long
 *   as the key stayed busy, and never asked again (it asked once they
 *   stopped). Now the link holding the most lets go of what it holds waiting
 *   then, and its keys are asked again at once, then at most every 2 s; what
 *   it sends next is taken in.
 * - A link letting go of its records also let go of the answer to the
 *   page's own `getData`, which came back null. Answers to gets the page
 *   waits for are never let go now.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomId } from "../../src/base/random.js";
import { DEFAULT_CLIENT_INTAKE } from "../../src/network/client-intake.js";
import { signRecord } from "../../src/node/record-signer.js";
import type { ToolDbRecord } from "../../src/records/record.js";
import { waitUntil } from "../helpers/nodes.js";
import { answerProbe, fileHostilePageRig, pageGlobal, pageStored } from "../helpers/hostile-page-rig.js";
import { testAuthor } from "../helpers/signed-records.js";

const TOPIC = "page-intake-sybil";
/** The key the Sybil links flood; the page's own check of it is held. */
const SYBIL_KEY = "sybil/feed";
/** The key the honest server relays, busy: written every WRITE_MS without end. */
const BUSY_KEY = "sybil/busy";
const PAD = 30_000;
/** Waiting from each Sybil link (MiB), besides what it has in flight: two of them leave the honest link 18 MiB of the 48 before the bound. */
const SYBIL_WAITING_MIB = 15;
/** An honest update every this many ms: never a quiet second. */
const WRITE_MS = 10;
/** How soon after the page's check of the busy key answers an update written then must be stored (ms; 0.2 s measured). */
const NEWEST_BOUND_MS = 10_000;

describe("a page whose honest server relays a busy key while Sybil links hold the rest of its intake", () => {
  const rig = fileHostilePageRig(TOPIC, ["127.0.0.21", "127.0.0.22"]);
  const sybils = rig.hostiles;

  /**
   * A page linked to both Sybils and the honest server, subscribed to both
   * keys; its app's check of each key answers only once the test releases
   * it. Sybil n answers a get of `key` with `answer(n, key)`, if any.
   */
  async function sybilPage(answer: (n: number, key: string) => ToolDbRecord | undefined = () => undefined) {
    const gets = sybils.map(() => 0);
    sybils.forEach((sybil, n) => {
      sybil.onFrame = (link, f) => {
        if (answerProbe(link, f) || f.type !== "get" || typeof f.key !== "string") return;
        gets[n]!++;
        const record = answer(n, f.key);
        if (record) link.send({ type: "put", id: f.id, to: [], data: record });
      };
    });
    const { page, errors } = await rig.openLinkedPage({
      serverSelection: false,
      // Counts the Sybils' flood frames as they reach the page, before the database sees them.
      beforeStart: (page) =>
        page.evaluate(() => {
          const w = window as any;
          w.sybilIn = 0;
          const Native = WebSocket;
          w.WebSocket = class extends Native {
            constructor(...args: ConstructorParameters<typeof WebSocket>) {
              super(...args);
              this.addEventListener("message", (e: MessageEvent) => typeof e.data === "string" && e.data.includes('"sybil":') && w.sybilIn++);
            }
          };
        }),
    });
    await page.evaluate(
      async ({ keys }) => {
        const w = window as any;
        w.refused = [];
        w.release = {};
        w.db.on("refused", (e: { code: string; peer?: string; reason: string }) => w.refused.push(e));
        for (const key of keys) {
          const gate = new Promise((resolve) => (w.release[key] = () => resolve(true)));
          w.db.addCustomVerification(key, () => gate);
          await w.db.subscribeData(key);
        }
      },
      { keys: [SYBIL_KEY, BUSY_KEY] },
    );
    await waitUntil(() => sybils.every((s) => s.links.size === 1) && rig.honestHoldsSubscription(BUSY_KEY), 10_000, "every server linked, the honest one holding the subscription");
    const value = <T>(name: string) => pageGlobal<T>(page, name);
    return {
      page,
      errors,
      gets,
      value,
      release: (key: string) => page.evaluate((k) => (window as any).release[k](), key),
      stored: (key: string) => pageStored(page, key),
      /** MEMORY_LIMIT refusals: the peer, and the reason. */
      letGo: async () => (await value<Array<{ code: string; peer?: string; reason: string }>>("refused")).filter((e) => e.code === "MEMORY_LIMIT"),
      /** What each link holds waiting (characters), by peer id. */
      waiting: () =>
        page.evaluate(() => {
          const out: Record<string, number> = {};
          for (const link of (window as any).db.network.links.links) if (link.session && link.intake) out[link.session.clientId] = link.intake.queuedBytes;
          return out;
        }),
    };
  }

  /** Signed records of SYBIL_KEY, each of PAD characters, older than anything honest. */
  async function sybilFlood(count: number): Promise<ToolDbRecord[]> {
    const author = await testAuthor();
    const base = Date.now() - 600_000;
    return Promise.all(Array.from({ length: count }, (_, i) => signRecord(author, SYBIL_KEY, { sybil: i, pad: "s".repeat(PAD) }, base + i, 0, false)));
  }

  it(`takes the honest server's newest update of a busy key within ${NEWEST_BOUND_MS / 1000} s while two Sybil links flood, though the Sybils made the honest link the largest and its key never goes quiet`, { timeout: 240_000 }, async () => {
    const p = await sybilPage();
    const honestId = rig.honest.network.getClientAddress().slice(-20);
    const sybilIds = sybils.map((s) => s.id.clientId);
    // Each Sybil: what it has in flight (the page's check of the key holds it), then SYBIL_WAITING_MIB waiting.
    const frameLength = JSON.stringify({ type: "put", id: randomId(), to: [], data: (await sybilFlood(1))[0] }).length;
    const perSybil = Math.ceil(DEFAULT_CLIENT_INTAKE.maxOutstandingPerPeer / (frameLength / 32_768)) + 1 + Math.floor((SYBIL_WAITING_MIB * 2 ** 20) / frameLength);
    const flood = await sybilFlood(perSybil + 2000);
    let sent = 0;
    const sendFlood = (count: number) => {
      for (const sybil of sybils) for (let i = 0; i < count; i++) [...sybil.links][0]!.send({ type: "put", id: randomId(), to: [], data: flood[sent + i]! });
      sent += count;
    };
    sendFlood(perSybil);
    await p.page.waitForFunction((n) => (window as any).sybilIn === n, 2 * perSybil, { timeout: 60_000, polling: 50 });
    const sybilsHeld = await p.waiting();

    // The honest server relays an update of the busy key every WRITE_MS, without end: large ones until its link was let go.
    let written = 0;
    let large = true;
    let writing = true;
    const writes = (async () => {
      while (writing) {
        const n = written++;
        await rig.writer.putData(BUSY_KEY, large ? { n, pad: "h".repeat(PAD) } : { n });
        await new Promise((resolve) => setTimeout(resolve, WRITE_MS));
      }
    })();
    let sybilTimer: NodeJS.Timeout | undefined;
    try {
      await waitUntil(async () => (await p.letGo()).some((e) => e.peer === honestId), 60_000, "the Sybils to make the honest link the largest").catch(async (err: unknown) => {
        throw new Error(`${String(err)}: waiting ${JSON.stringify(await p.waiting())}, refusals ${JSON.stringify(await p.letGo())}`);
      });
      const crowdedAt = written;
      large = false;
      // The Sybils' flood goes on: a record each every 50 ms.
      sybilTimer = setInterval(() => sent + 1 < flood.length && sendFlood(1), 50);
      // The page's check of the busy key answers from now on: it can take the honest link's updates.
      const from = written;
      const t0 = Date.now();
      await p.release(BUSY_KEY);
      await waitUntil(async () => ((await p.stored(BUSY_KEY))?.v as { n?: number } | undefined)?.n! >= from, NEWEST_BOUND_MS, `an update written after ${from} stored`).catch(async (err: unknown) => {
        throw new Error(`${String(err)}: stored ${JSON.stringify((await p.stored(BUSY_KEY))?.v)?.slice(0, 60)}, written ${written}, waiting ${JSON.stringify(await p.waiting())}, refusals ${JSON.stringify((await p.letGo()).map((e) => `${e.peer}: ${e.reason}`))}`);
      });
      const newestMs = Date.now() - t0;
      const letGo = await p.letGo();
      const honestLetGo = letGo.filter((e) => e.peer === honestId);
      const links = await p.page.evaluate(() => (window as any).db.network.peers.filter((s: any) => s.isServer).length as number);
      console.log(
        `page, 2 Sybils holding ${Object.entries(sybilsHeld)
          .filter(([id]) => sybilIds.includes(id))
          .map(([, b]) => (b / 2 ** 20).toFixed(1))
          .join(" and ")} MiB waiting: the honest link the largest after ${crowdedAt} updates; an update written ${from - crowdedAt} updates later stored ${newestMs} ms after the page's check answered (${written} written); ` +
          `the honest link let go ${honestLetGo.length} times, the Sybils ${letGo.length - honestLetGo.length}; Sybil records sent ${sent * 2}`,
      );
      assert.equal(links, 3, "every link kept");
      assert.ok(honestLetGo.every((e) => /the \d+ records it held waiting are let go/.test(e.reason)), `the honest link let go of what it held waiting, no more: ${honestLetGo.map((e) => e.reason).join(" | ")}`);
    } finally {
      writing = false;
      clearInterval(sybilTimer);
      await writes;
      await p.release(SYBIL_KEY).catch(() => undefined);
      await p.page.context().close();
    }
    assert.deepEqual(p.errors, [], "no error in the page");
  });

  it("getData answered by a link whose records the page lets go returns the value (before: the answer was let go with them, null)", { timeout: 120_000 }, async () => {
    const author = await testAuthor();
    const asked = await signRecord(author, "sybil/asked", "the value", Date.now() - 1000, 0, false);
    // Only the link letting go holds the key asked.
    const p = await sybilPage((n, key) => (n === 0 && key === "sybil/asked" ? asked : undefined));
    // Sybil 0 sends more small records than a link may hold waiting while the page's check of the key is held: its records go.
    const small = await Promise.all(Array.from({ length: DEFAULT_CLIENT_INTAKE.maxQueuedMessages + 2000 }, (_, i) => signRecord(author, SYBIL_KEY, { sybil: i }, Date.now() - 600_000 + i, 0, false)));
    const [link] = [...sybils[0]!.links];
    for (const r of small) link!.send({ type: "put", id: randomId(), to: [], data: r });
    await p.page.waitForFunction((n) => (window as any).sybilIn >= n, small.length, { timeout: 60_000, polling: 50 });
    await waitUntil(async () => (await p.letGo()).some((e) => e.peer === sybils[0]!.id.clientId), 10_000, "the link past its bound letting go");
    // The checks answer; the link goes on sending a record every 50 ms: it never goes quiet, so it keeps letting go.
    await p.release(SYBIL_KEY);
    let next = 0;
    const more = await Promise.all(Array.from({ length: 200 }, (_, i) => signRecord(author, SYBIL_KEY, { sybil: small.length + i }, Date.now() - 500_000 + i, 0, false)));
    const trickle = setInterval(() => next < more.length && link!.send({ type: "put", id: randomId(), to: [], data: more[next++]! }), 50);
    try {
      // Its records in flight let go (the trickle's are let go as they come): nothing of the link is in flight.
      const sybilLink = (id: string) => [...(window as any).db.network.links.links].find((l: any) => l.session?.clientId === id);
      await p.page.waitForFunction(`(${sybilLink.toString()})(${JSON.stringify(sybils[0]!.id.clientId)})?.intake.outstanding === 0`, undefined, { timeout: 10_000, polling: 20 });
      const shedding = await p.page.evaluate(`(${sybilLink.toString()})(${JSON.stringify(sybils[0]!.id.clientId)})?.shed !== undefined`);
      const t0 = Date.now();
      const value = await p.page.evaluate(() => (window as any).db.getData("sybil/asked", false, 5000));
      const ms = Date.now() - t0;
      console.log(`page, getData answered by a link letting go of its records (shedding: ${shedding}): ${JSON.stringify(value)} in ${ms} ms`);
      assert.ok(shedding, "the link was letting go of its records when the answer came");
      assert.equal(value, "the value");
    } finally {
      clearInterval(trickle);
      await p.page.context().close();
    }
  });
});
