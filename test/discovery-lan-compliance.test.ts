/**
 * Runs the discovery compliance suite for LanMechanism inside a network
 * namespace this test creates (multicast needs a real interface: a veth with
 * a multicast route). Fails with the reason where namespaces cannot be made.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createNetnsLan } from "./helpers/netns.js";

it("LanMechanism passes the discovery compliance suite (in a network namespace)", { timeout: 60_000 }, async () => {
  const lan = createNetnsLan(78);
  try {
    const runner = fileURLToPath(new URL("./helpers/lan-suite-runner.js", import.meta.url));
    // A nested `node --test` under a test runner reports in the runner's binary format unless told otherwise.
    const env = { TOOLDB_LAN_IFACE: lan.a.ip, NODE_TEST_CONTEXT: "" };
    const { code, out, err } = await lan.run(lan.a.ns, "--test", env, undefined, ["--test-reporter=tap", runner]).exited;
    assert.equal(code, 0, `suite failed:\n${out}\n${err}`);
    assert.match(out, /^# pass [1-9]\d*$/m);
    assert.match(out, /^# fail 0$/m);
  } finally {
    lan.destroy();
  }
});
