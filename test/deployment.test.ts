/**
 * The deployment recipes of docs/operating-deployment.md: the systemd unit passes
 * `systemd-analyze verify` (skipped, saying why, where systemd-analyze is
 * missing), and every tooldb-dht command line in the unit and the container
 * file is one the CLI accepts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../build/browser-bundle.js";
import { STOP_BOUND_MS } from "../src/cli/signal-exit.js";
import { run } from "./helpers/cli.js";

const operating = readFileSync(join(ROOT, "docs/operating-deployment.md"), "utf8");
const block = (lang: string) => {
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(operating);
  assert.ok(m, `docs/operating-deployment.md has a ${lang} block`);
  return m[1]!;
};

/** The CLI accepts these words (flags known, values well formed): `--help` after them exits 0 only then. */
async function accepted(words: string[]): Promise<void> {
  const { code, err } = await run([...words, "--help"]).exited;
  assert.equal(code, 0, `tooldb-dht ${words.join(" ")}: ${err}`);
}

describe("deployment recipes in docs/operating-deployment.md", { timeout: 60_000 }, () => {
  it("the systemd unit passes systemd-analyze verify", (t) => {
    const unit = block("ini");
    const probe = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      t.skip(`systemd-analyze not available here (${probe.error?.message ?? probe.stderr.trim()})`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "tooldb-unit-"));
    try {
      const file = join(dir, "tooldb-dht.service");
      writeFileSync(file, unit);
      const verify = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stderr);
      assert.equal(verify.stderr.trim(), "", verify.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the unit's ExecStart and the container's ENTRYPOINT + CMD and HEALTHCHECK are command lines the CLI accepts", async () => {
    const exec = /^ExecStart=\/usr\/bin\/env tooldb-dht (.+)$/m.exec(block("ini"));
    assert.ok(exec, "ExecStart runs tooldb-dht");
    await accepted(exec[1]!.split(/\s+/));
    const container = block("dockerfile");
    const json = (instruction: string) => JSON.parse(new RegExp(`^${instruction} (\\[.*\\])$`, "m").exec(container)![1]!) as string[];
    const entrypoint = json("ENTRYPOINT");
    assert.equal(entrypoint[0], "tooldb-dht");
    await accepted([...entrypoint.slice(1), ...json("CMD")]);
    const health = JSON.parse(/^HEALTHCHECK .* CMD (\[.*\])$/m.exec(container)![1]!) as string[];
    await accepted(health.slice(1));
    for (const needed of [/^VOLUME \/data$/m, /^EXPOSE 9000\/tcp 19000\/tcp$/m, /^STOPSIGNAL SIGTERM$/m]) assert.match(container, needed);
  });

  it("the stop grace the unit and the docker run line give covers serve's worst stop (STOP_BOUND_MS and a second)", () => {
    const worst = STOP_BOUND_MS / 1000 + 1;
    const unit = Number(/^TimeoutStopSec=(\d+)$/m.exec(block("ini"))?.[1]);
    assert.ok(unit > worst, `TimeoutStopSec=${unit}, serve may take ${worst} s`);
    const docker = Number(/`docker run [^`]*--stop-timeout (\d+)/.exec(operating)?.[1]);
    assert.ok(docker > worst, `docker run --stop-timeout ${docker}, serve may take ${worst} s`);
  });
});
