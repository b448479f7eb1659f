/**
 * `tooldb-dht serve` ends its process on SIGTERM, also when the disk under
 * its stores stalls: a LevelDB call stuck on libuv's pool keeps Node from
 * exiting by itself (the library gives up waiting for it, the job stays),
 * so the CLI exits once the stop ended or after STOP_BOUND_MS, and a second
 * signal exits at once. Without that, a stalled server sat until its
 * supervisor's SIGKILL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { STOP_BOUND_MS } from "../src/cli/signal-exit.js";
import { cliScratch, run, type RunOptions } from "./helpers/cli.js";
import { stalledDisk } from "./helpers/stalled-disk.js";

/** Starting the child, and its exit once decided (stdout flushed, a loaded 2-core box). */
const SLACK_MS = 10_000;

describe("serve exits on SIGTERM", { timeout: 4 * (STOP_BOUND_MS + 2 * SLACK_MS) }, () => {
  const scratch = cliScratch("tooldb-serve-exit-");
  let n = 0;

  /** serve, signalled once it announces (`again`: once more when it says it is stopping); how long from the first signal to the exit. */
  async function signalled(options: RunOptions, again = false, extra: string[] = []) {
    let signalledAt = 0;
    const args = ["serve", "--topic", "serve-exit", "--host", "127.0.0.2", "--port", "0", "--data", join(scratch.dir, `data${++n}`), "--bootstrap", scratch.bootstrap, ...extra];
    const { exited } = run(
      args,
      (line, child) => {
        if (line.startsWith("Announcing on DHT topic")) {
          signalledAt = performance.now();
          child.kill("SIGTERM");
        }
        if (again && line.startsWith("stall: the disk stopped answering")) child.kill("SIGTERM");
      },
      STOP_BOUND_MS + 2 * SLACK_MS,
      options,
    );
    const result = await exited;
    const ms = performance.now() - signalledAt;
    process.stdout.write(`# ended by ${result.signal ?? `exit code ${result.code}`} ${Math.round(ms)} ms after SIGTERM\n`);
    return { ...result, ms };
  }

  it("no stall: stops and exits 0", async () => {
    const { code, out, err } = await signalled({});
    assert.equal(code, 0, `exit code ${code}; stderr: ${err}`);
    assert.match(out, /SIGTERM: left the DHT, closed sockets and store/);
    assert.equal(err, "");
  });

  it("the disk stalls at close: the stop ends (the node gives up on its calls), and the process, which their jobs still hold, ends by the SIGTERM, its reason on stderr", async () => {
    const { code, signal, out, err, ms } = await signalled(stalledDisk(join(scratch.dir, "stall-1.fifo")));
    assert.match(out, /^stall: the disk stopped answering$/m, "the disk stalled");
    assert.equal(signal, "SIGTERM", `ended by ${signal ?? `exit code ${code}`} ${Math.round(ms)} ms after SIGTERM; stdout: ${out}; stderr: ${err}`);
    assert.ok(ms < STOP_BOUND_MS + SLACK_MS, `ended ${Math.round(ms)} ms after SIGTERM`);
    // The node's close gave up on the stalled calls (its bounds), so the stop ended; their jobs on libuv's pool still held the process.
    assert.match(out, /SIGTERM: left the DHT, closed sockets and store/);
    assert.match(err, /^tooldb-dht: SIGTERM: stopped, but something still held the process \d+ s later \(a call on a stalled disk\?\): ending it$/m);
  });

  it("the warning that no DHT node answered is not printed while a slow stop leaves the DHT and waits for the stalled disk", async () => {
    // A 1 s threshold: the stop on a stalled disk takes several seconds after the DHT is left (no node in the routing table then).
    const { out, err } = await signalled(stalledDisk(join(scratch.dir, "stall-3.fifo")), false, ["--dht-warn-after", "1"]);
    assert.match(out, /^stall: the disk stopped answering$/m, "the disk stalled");
    assert.match(out, /SIGTERM: left the DHT, closed sockets and store/, `stderr: ${err}`);
    assert.doesNotMatch(out, /no DHT node has answered/);
  });

  it("a second SIGTERM while the stop waits for the stalled disk ends the process at once", async () => {
    const { code, signal, out, err } = await signalled(stalledDisk(join(scratch.dir, "stall-2.fifo")), true);
    assert.equal(signal, "SIGTERM", `ended by ${signal ?? `exit code ${code}`}; stderr: ${err}`);
    assert.match(err, /^tooldb-dht: SIGTERM again while stopping after SIGTERM: ending at once/m);
    assert.doesNotMatch(out, /left the DHT/);
  });
});
