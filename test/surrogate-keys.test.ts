/**
 * Keys with lone surrogates (outside check: attack-surrogate-key.mjs).
 * LevelDB keeps keys as UTF-8, where every lone surrogate becomes U+FFFD:
 * the distinct keys "note\uFFFD", "note\uD800" and "note\uDC00" shared one
 * slot. An honest client confirmed "note\uFFFD"; a stranger's validly
 * signed record for "note\uD800" replaced it, and the server answered a get
 * of "note\uFFFD" with the stranger's record (which the client refused as a
 * reply for another key: getData gave null). Keys must be well-formed
 * UTF-16 on every path (records, get/query/subscribe keys from peers, the
 * local API), and a record read from a slot must carry the key asked
 * (stores written before the rule). Real LevelDB, real sockets.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, LevelStore, ToolDb, isToolDbError } from "../src/index.js";
import { loneSurrogateAt } from "../src/base/text-formats.js";
import { signRecord } from "../src/node/record-signer.js";
import { randomId } from "../src/base/random.js";
import { portOf, startClient, startServer } from "./helpers/nodes.js";
import { type Frame, RawLink, closedAfterEachTest, rawIdentity } from "./helpers/raw-peer.js";
import type { ToolDbRecord } from "../src/records/record.js";
import { collectUnhandledRejections } from "./helpers/unhandled.js";

const T = 15_000;
const HONEST = "note\uFFFD";
const unhandled = collectUnhandledRejections();
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function levelServer(): Promise<ToolDb> {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-surrogate-"));
  dirs.push(dir);
  return startServer({ storageAdapter: LevelStore, storageName: join(dir, "db") });
}

function typed(code: ErrorCode, text?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isToolDbError(err, code), `expected ToolDbError ${code}, got ${String((err as Error)?.message)}`);
    if (text) assert.match((err as Error).message, text);
    return true;
  };
}

/** Puts `record` asking for an ack; resolves the server's putAck that names its hash (stored or refused). */
function putAnswer(link: RawLink, record: ToolDbRecord): Promise<Frame> {
  const answer = link.next((f) => f.type === "putAck" && JSON.stringify([f.stored, f.refused]).includes(record.h));
  link.send({ type: "put", id: randomId(), to: [], ack: true, data: record });
  return answer;
}

describe("well-formed keys", () => {
  it("finds lone surrogates and passes pairs", { timeout: T }, () => {
    const cases: Array<[string, number]> = [
      ["", -1],
      ["note", -1],
      ["note\uFFFD", -1],
      ["smile \uD83D\uDE00", -1],
      ["note\uD800", 4],
      ["\uDC00note", 0],
      ["half \uD83D", 5],
      ["\uD83D\uDE00\uD83D", 2],
      ["\uD800\uD800\uDC00", 0],
      ["\uD83D\uDE00\uDE00", 2],
    ];
    for (const [text, at] of cases) assert.equal(loneSurrogateAt(text), at, JSON.stringify(text));
  });

  const nodes = closedAfterEachTest<ToolDb>(T);

  it("the local API refuses ill-formed keys and prefixes (INVALID_KEY)", { timeout: T }, async () => {
    const db = new ToolDb({ topic: "test", wait: 20 });
    nodes.push(db);
    await db.ready;
    const lone = typed(ErrorCode.INVALID_KEY, /lone surrogate/);
    await assert.rejects(db.putData("note\uD800", 1), lone);
    await assert.rejects(db.putData("half \uD83D", 1), lone);
    await assert.rejects(db.getData("note\uDC00", false, 50), lone);
    await assert.rejects(db.queryKeys("note\uD800", false, 50), lone);
    await assert.rejects(db.subscribeData("note\uD800"), lone);
    await assert.rejects(db.signUp("me\uD800", "pw"), typed(ErrorCode.INVALID_KEY, /lone surrogate/));
    // Well-formed keys, U+FFFD and emoji included, are kept.
    await db.putData(HONEST, "ok");
    await db.putData("smile \uD83D\uDE00", "ok");
    assert.equal(await db.getData(HONEST, false, 50), "ok");
    assert.equal(await db.getData("smile \uD83D\uDE00", false, 50), "ok");
  });

  it("a stranger's record for a key with a lone surrogate is refused and cannot replace another key's record", { timeout: 60_000 }, async () => {
    const srv = await levelServer();
    nodes.push(srv);
    const refusals: string[] = [];
    srv.on("refused", (e) => refusals.push(`${e.code} ${e.reason}`));
    const honest = await startClient([srv]);
    nodes.push(honest);
    await honest.putData(HONEST, "honest value", false, { ack: 1 });
    const stored = await srv.records.get(HONEST);

    const id = await rawIdentity();
    const link = await RawLink.open(portOf(srv), { topic: "test", id });
    await link.provenHandshake();
    for (const key of ["note\uD800", "note\uDC00"]) {
      const record = await signRecord(id.user, key, "attacker value", Date.now() + 1000, 0, false);
      const answer = await putAnswer(link, record);
      assert.deepEqual(answer.stored, [], `the put of ${JSON.stringify(key)} was stored`);
      assert.match(JSON.stringify(answer.refused), /lone surrogate/);
    }
    // Two half-cut emoji: distinct keys that UTF-8 made one.
    for (const key of ["cut \uD83D", "cut \uD83C"]) {
      const record = await signRecord(id.user, key, key, Date.now(), 0, false);
      assert.deepEqual((await putAnswer(link, record)).stored, []);
    }
    assert.deepEqual(await srv.queryKeys("cut ", false, 50), []);
    // A get of an ill-formed key is refused (it would read the slot of "note\uFFFD").
    link.send({ type: "get", id: randomId(), to: [], key: "note\uD800" });
    assert.deepEqual(await srv.records.get(HONEST), stored, "the honest record is intact");

    const fresh = await startClient([srv]);
    nodes.push(fresh);
    assert.equal(await fresh.getData(HONEST, false, 2000), "honest value");
    assert.deepEqual(await fresh.queryKeys("note", false, 1000), [HONEST]);
    assert.ok(refusals.some((r) => r.startsWith(ErrorCode.BAD_MESSAGE) && /key must be well-formed/.test(r)), refusals.join("\n"));
    assert.deepEqual(unhandled, []);
  });

  it("a record stored before the rule under another key's slot is neither served nor kept against that key's owner", { timeout: 60_000 }, async () => {
    const srv = await levelServer();
    nodes.push(srv);
    const refusals: Array<{ code: string; reason: string }> = [];
    srv.on("refused", (e) => refusals.push(e));
    const id = await rawIdentity();
    // What an older server wrote: "note\uD800"'s record, in the UTF-8 slot of "note\uFFFD".
    const old = await signRecord(id.user, "note\uD800", "old stranger value", Date.now(), 0, false);
    await srv.records.backend.put("note\uD800", JSON.stringify(old));
    assert.equal(await srv.records.get(HONEST), undefined, "another key's record was served");
    assert.ok(refusals.some((e) => e.code === ErrorCode.INVALID_KEY && /holds the record of key .* under key .*not served/.test(e.reason)), JSON.stringify(refusals));

    const honest = await startClient([srv]);
    nodes.push(honest);
    assert.equal(await honest.getData(HONEST, false, 1000), null);
    // The slot's own key takes it, although the stranger's record is newer than nothing and older than this.
    await honest.putData(HONEST, "honest value", false, { ack: 1 });
    assert.equal((await srv.records.get(HONEST))?.v, "honest value");
    const fresh = await startClient([srv]);
    nodes.push(fresh);
    assert.equal(await fresh.getData(HONEST, false, 2000), "honest value");
    assert.deepEqual(unhandled, []);
  });
});
