/**
 * A damaged LevelDB is never opened or recreated: missing CURRENT, a
 * truncated manifest, a truncated table and garbage inside the log each
 * refuse with STORAGE_DAMAGED and leave every file as it was (LevelDB alone
 * would open them and lose data for good); `serve` exits 1 saying so and
 * naming --repair; `serve --repair` repairs and serves what was kept. A
 * damaged peer cache (only a cache) does not stop `serve`, which warns;
 * `--repair` repairs it too, or makes it anew.
 */
import assert from "node:assert/strict";
import { closeSync, cpSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ClassicLevel } from "classic-level";
import { ErrorCode, isToolDbError } from "../src/base/errors.js";
import { startBootstrapNode, type BootstrapNode } from "../src/entries/discovery.js";
import { LevelStore } from "../src/stores/level-store.js";
import { run } from "./helpers/cli.js";

const KEYS = 4000;
/** 3 KB values: 12 MB in all, so LevelDB has written tables and still holds the rest in its log. */
const VALUE = "v".repeat(3000);

const DAMAGES: Record<string, (dir: string) => void> = {
  "missing CURRENT": (dir) => unlinkSync(join(dir, "CURRENT")),
  "truncated manifest": (dir) => {
    const manifest = join(dir, readFileSync(join(dir, "CURRENT"), "utf8").trim());
    truncateSync(manifest, statSync(manifest).size - 3);
  },
  "truncated table": (dir) => {
    const table = join(dir, readdirSync(dir).find((f) => f.endsWith(".ldb"))!);
    truncateSync(table, Math.floor(statSync(table).size / 2));
  },
  "garbage in the log": (dir) => {
    const log = join(dir, readdirSync(dir).find((f) => f.endsWith(".log"))!);
    const fd = openSync(log, "r+");
    writeSync(fd, Buffer.alloc(2000, 0x5a), 0, 2000, Math.floor(statSync(log).size / 3));
    closeSync(fd);
  },
};

function listing(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f !== "LOCK" && f !== "LOG" && f !== "LOG.old")
    .sort()
    .map((f) => `${f}:${statSync(join(dir, f)).size}`)
    .join(" ");
}

async function countKeys(dir: string): Promise<number> {
  const db = new ClassicLevel(dir);
  await db.open({ createIfMissing: false });
  let n = 0;
  for await (const _ of db.keys()) n++;
  await db.close();
  return n;
}

describe("damaged LevelDB stores are refused, never recreated", { timeout: 180_000 }, () => {
  let work: string;
  let pristine: string;
  let seed: BootstrapNode;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "tooldb-damage-"));
    pristine = join(work, "pristine");
    const db = new ClassicLevel<string, string>(pristine, { valueEncoding: "utf8" });
    await db.open();
    for (let i = 0; i < KEYS; i++) await db.put(`key-${String(i).padStart(5, "0")}`, VALUE);
    await db.close();
    assert.ok(readdirSync(pristine).some((f) => f.endsWith(".ldb")) && readdirSync(pristine).some((f) => f.endsWith(".log")), "tables and a log");
    seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
  });

  after(async () => {
    await seed?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it("a whole store opens, and an empty or absent directory is created", async () => {
    const copy = join(work, "whole");
    cpSync(pristine, copy, { recursive: true });
    const store = new LevelStore(undefined, copy);
    await store.ready;
    assert.equal(await store.get("key-00000"), VALUE);
    await store.close();
    const fresh = new LevelStore(undefined, join(work, "fresh", "db"));
    await fresh.ready;
    await fresh.put("k", "v");
    await fresh.close();
  });

  it("a damaged peer cache (DIR.peers): serve warns naming it and --repair, and serves; serve --repair repairs it or makes it anew", async () => {
    const data = join(work, "peer-cache");
    const args = ["serve", "--topic", "damaged-peers", "--host", "127.0.0.1", "--port", "0", "--data", data, "--bootstrap", `127.0.0.1:${seed.address().port}`, "--no-metrics"];
    const stop = (line: string, child: { kill(signal: NodeJS.Signals): boolean }) => line.startsWith("Announcing on DHT topic") && child.kill("SIGINT");
    assert.equal((await run(args, stop).exited).code, 0);
    writeFileSync(join(`${data}.peers`, "CURRENT"), "garbage\n");

    // Before: the peer cache was switched off without a word (a DEBUG line only).
    let warned = "";
    const served = await run(args, (line, child) => {
      if (line.startsWith("warning: the peer cache")) warned = line;
      if (warned && line.startsWith("Announcing on DHT topic")) child.kill("SIGINT");
      else if (line.startsWith("Announcing on DHT topic")) setTimeout(() => child.kill("SIGINT"), 1000);
    }).exited;
    assert.equal(served.code, 0, served.out + served.err);
    assert.ok(warned.includes(`${data}.peers`) && warned.includes("serve --repair"), `a warning naming ${data}.peers and serve --repair:\n${served.out}`);

    // Before: --repair listed DIR, DIR.keys and DIR.sync, and left DIR.peers damaged.
    const repaired = await run([...args, "--repair"], stop).exited;
    assert.equal(repaired.code, 0, repaired.out + repaired.err);
    assert.ok(repaired.out.includes(`--repair: ${data}.peers is damaged (`), repaired.out);
    assert.match(repaired.out, new RegExp(`--repair: ${data.replace(/[/.-]/g, "\\$&")}\\.peers (repaired|could not be repaired .*; removed, to be made anew empty)`));
    assert.doesNotMatch(repaired.out, /warning: the peer cache/);
    assert.notEqual(readFileSync(join(`${data}.peers`, "CURRENT"), "utf8"), "garbage\n");
  });

  for (const [name, damage] of Object.entries(DAMAGES)) {
    it(`${name}: LevelStore refuses with STORAGE_DAMAGED and changes nothing; serve exits 1 naming --repair; serve --repair serves again`, async () => {
      const dir = join(work, name.replace(/ /g, "-"));
      cpSync(pristine, dir, { recursive: true });
      damage(dir);
      const before = listing(dir);
      const store = new LevelStore(undefined, dir);
      await assert.rejects(store.ready, (err: unknown) => isToolDbError(err, ErrorCode.STORAGE_DAMAGED) && /damaged/.test(err.message) && /--repair/.test(err.message));
      await store.close();
      assert.equal(listing(dir), before, "the damaged directory was left as it was");

      const args = ["serve", "--topic", "damaged", "--host", "127.0.0.1", "--port", "0", "--data", dir, "--bootstrap", `127.0.0.1:${seed.address().port}`, "--no-metrics"];
      const refused = await run(args).exited;
      assert.equal(refused.code, 1, refused.out + refused.err);
      assert.match(refused.err, /^tooldb-dht: LevelDB at .* is damaged: .*--repair/);
      assert.equal(listing(dir), before, "serve left the damaged directory as it was");

      const repaired = await run([...args, "--repair"], (line, child) => line.startsWith("Announcing on DHT topic") && child.kill("SIGINT")).exited;
      assert.equal(repaired.code, 0, repaired.out + repaired.err);
      assert.match(repaired.out, /--repair: .* is damaged \(.+\); repairing/);
      assert.match(repaired.out, /--repair: .* repaired/);
      const kept = await countKeys(dir);
      // Repair keeps what it can read: everything but a truncated table's records.
      if (name === "truncated table") assert.ok(kept > 0 && kept < KEYS, `kept ${kept}`);
      else assert.ok(kept >= KEYS - 10, `kept ${kept} of ${KEYS}`);
    });
  }
});
