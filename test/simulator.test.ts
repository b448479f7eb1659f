/**
 * `npm run simulate` end to end at a small size: a real private
 * bittorrent-dht network of 12 announcers, then the mesh on the virtual
 * clock with the flooding relay and with the tree, and the report.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const simulator = fileURLToPath(new URL("../sim/run.js", import.meta.url));

function simulate(args: string[], killAfterMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--expose-gc", simulator, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d));
  child.stderr.on("data", (d: Buffer) => (err += d));
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    });
  });
}

describe("npm run simulate", { timeout: 180_000 }, () => {
  it("runs a small scenario on a real DHT and reports flood beside tree, with progress on stderr", async () => {
    const { code, out, err } = await simulate(["--servers", "12", "--clients", "3", "--puts", "8", "--settle", "2000"], 170_000);
    assert.equal(code, 0, `exit code (stderr: ${err.slice(-2000)})`);
    assert.match(err, /dht: 12\/12 servers announced/);
    assert.match(err, /tree 12s: servers linked/);
    assert.match(out, /DHT \(real bittorrent-dht on loopback, 12 announcers\)/);
    assert.match(out, /figure\s+flood\s+tree/);
    assert.match(out, /puts on every live server by the end\s+8 of 8\s+8 of 8/);
    assert.match(out, /live servers reached by relay alone, mean \/ min\s+100\.0 % \/ 100\.0 %\s+100\.0 % \/ 100\.0 %/);
    assert.match(out, /tree \/ flood: copies per server 0\.\d+/);
  });

  it("cuts the mesh in two and crashes servers silently, and reports how long after the heal every put was everywhere", async () => {
    const args = ["--servers", "16", "--clients", "4", "--puts", "12", "--rate", "1", "--partition", "30", "--crash", "50%", "--mode", "tree", "--settle", "10000"];
    const { code, out, err } = await simulate(args, 170_000);
    assert.equal(code, 0, `exit code (stderr: ${err.slice(-2000)})`);
    assert.match(err, /partition into two halves for 30 s/);
    assert.match(err, /healed; \d+ puts not on every live server/);
    assert.match(out, /partition into two halves for 30 s/);
    assert.match(out, /servers killed \(crashed\) \/ started during the run\s+\d+ \(\d+\) \/ \d+/);
    assert.match(out, /puts on every live server by the end\s+12 of 12/);
    assert.match(out, /after the heal, until on every live server \(ms\), p50\/p99\/max\s+[\d-]+\/[\d-]+\/[\d-]+\n/);
  });

  it("refuses an unknown option with a message", async () => {
    const { code, err } = await simulate(["--servers", "3", "--bogus", "1"], 30_000);
    assert.equal(code, 1);
    assert.match(err, /unknown option --bogus/);
  });
});
