/**
 * `serve` input an outside tester gave it that it took, or failed on with
 * an unclear line: an empty --data (an unset shell variable) made the
 * working directory the database; a --web-dir that is not there; a switch
 * given a value; limit values that jam the server; --no-metrics with
 * --metrics-port; TLS files that hold no certificate or key. Each is
 * refused in one line naming the flag, before anything is created (a bad
 * command line exits 2, a TLS file OpenSSL cannot use exits 1). Loopback
 * only: the DHT bootstrap is a UDP port nobody answers on.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generate } from "selfsigned";
import { failsWith, run } from "./helpers/cli.js";
import { silentUdpPort } from "./helpers/dht-testnet.js";

/** A self-signed P-256 certificate and its key (selfsigned, on WebCrypto: no openssl binary needed). */
async function certificate(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: "127.0.0.1" }], { keyType: "ec", curve: "P-256", algorithm: "sha256", notAfterDate: new Date(Date.now() + 86_400_000) });
  return { cert: pems.cert, key: pems.private };
}

describe("serve refuses bad input before it creates anything", { timeout: 120_000 }, () => {
  let root: string;
  let local: string[];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "tooldb-cli-input-"));
    local = ["serve", "--topic", "t", "--host", "127.0.0.1", "--port", "0", "--bootstrap", `127.0.0.1:${await silentUdpPort()}`];
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  /** A data directory a refused run must not make (and a run that was not refused makes inside root, not in the working directory). */
  const unmade = () => join(root, "unmade-data");

  it("--data '' (an unset shell variable) exits 2 and writes nothing into the working directory or its parent", async () => {
    const parent = join(root, "empty-data");
    const cwd = join(parent, "work");
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, "notes.txt"), "the user's own file\n");
    // Before: the working directory became the LevelDB (CURRENT, LOCK, LOG beside notes.txt), work.keys and co. went into the parent.
    assert.match(await failsWith([...local, "--no-metrics", "--data", ""], 2, { cwd }), /--data needs a file or directory name \(got an empty value/);
    assert.match(await failsWith([...local, "--no-metrics", "--data="], 2, { cwd }), /--data needs a file or directory name/);
    assert.match(await failsWith([...local, "--no-metrics", "--web-dir", ""], 2, { cwd }), /--web-dir needs a file or directory name/);
    assert.deepEqual(readdirSync(cwd), ["notes.txt"]);
    assert.deepEqual(readdirSync(parent), ["work"]);
  });

  it("--web-dir that is not there, or is a file, exits 2 naming it (as --tls-cert with a missing file does)", async () => {
    const data = join(root, "webdir-data");
    const missing = join(root, "no-such-dir");
    assert.match(await failsWith([...local, "--no-metrics", "--data", data, "--web-dir", missing], 2), new RegExp(`--web-dir ${missing}: cannot read it \\(ENOENT`));
    const file = join(root, "a-file.html");
    writeFileSync(file, "<p>hi</p>\n");
    assert.match(await failsWith([...local, "--no-metrics", "--data", data, "--web-dir", file], 2), new RegExp(`--web-dir ${file}: not a directory`));
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith("webdir-data")), [], "no data directory was made");
  });

  it("a switch given a value (--web=false, --repair=yes, --no-metrics=true) exits 2 saying it takes no value", async () => {
    for (const flag of ["--web=false", "--repair=yes", "--no-metrics=true", "--help=1"]) {
      const line = await failsWith(["serve", "--topic", "t", "--data", unmade(), flag], 2);
      // Before: "serve: --web needs a value (--web VALUE, or --web=VALUE ...)".
      assert.doesNotMatch(line, /needs a value/);
      assert.match(line, new RegExp(`serve: ${flag.split("=")[0]} is a switch and takes no value \\(got ${flag};`));
    }
    assert.match(await failsWith(["bootstrap", "--hyperdht=no"], 2), /bootstrap: --hyperdht is a switch and takes no value/);
  });

  it("limit values that would jam the server exit 2: 0 or a fraction where a count is needed, a rate of 0", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--message-burst", "0"], /--message-burst must be a whole number >= 1, or Infinity \(got 0\)/],
      [["--max-outstanding", "0"], /--max-outstanding must be a whole number >= 1/],
      [["--max-connections", "2.5"], /--max-connections must be a whole number >= 1, or Infinity \(got 2\.5\)/],
      [["--max-unverified", "0"], /--max-unverified must be a whole number >= 1/],
      [["--max-per-ip=0"], /--max-per-ip must be a whole number >= 1/],
      [["--max-send-backlog", "0"], /--max-send-backlog must be a whole number >= 1/],
      [["--message-rate", "0"], /--message-rate must be a number > 0, or Infinity/],
      [["--max-store-keys", "1.5"], /--max-store-keys must be a whole number >= 0/],
      [["--ban-duration", "-1"], /--ban-duration needs a value/],
      [["--ban-duration=-1"], /--ban-duration must be a number >= 0/],
    ];
    for (const [flags, reason] of cases) assert.match(await failsWith([...local, "--no-metrics", "--data", unmade(), ...flags], 2), reason, flags.join(" "));
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith("unmade")), [], "no data directory was made");
  });

  it("--no-metrics with --metrics-port (or --metrics-host) exits 2: they are alternatives", async () => {
    assert.match(await failsWith([...local, "--data", unmade(), "--no-metrics", "--metrics-port", "0"], 2), /--no-metrics and --metrics-port are alternatives/);
    assert.match(await failsWith([...local, "--data", unmade(), "--no-metrics", "--metrics-host", "127.0.0.1"], 2), /--no-metrics and --metrics-host are alternatives/);
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith("unmade")), [], "no data directory was made");
  });

  it("limits that may be 0 or Infinity (a quota, no bans, no rate limit) are taken: the server starts", async () => {
    const flags = ["--max-store-keys", "0", "--max-subscriptions", "0", "--ban-duration", "0", "--message-rate", "Infinity", "--max-connections", "Infinity", "--message-burst", "1"];
    const r = await run([...local, "--no-metrics", "--data", join(root, "limits-data"), ...flags], (line, child) => line.startsWith("Announcing on DHT topic") && child.kill("SIGTERM"), 15_000).exited;
    assert.equal(r.code, 0, `stdout: ${r.out}\nstderr: ${r.err}`);
    assert.match(r.out, /SIGTERM: left the DHT/);
  });

  it("TLS files OpenSSL cannot use exit 1 naming the flag and the file: junk, a key of another certificate", async () => {
    const junk = join(root, "junk.pem");
    writeFileSync(junk, "junk\n");
    const [mine, other] = [await certificate(), await certificate()];
    const files = { cert: join(root, "cert.pem"), key: join(root, "key.pem"), otherKey: join(root, "other-key.pem") };
    writeFileSync(files.cert, mine.cert);
    writeFileSync(files.key, mine.key);
    writeFileSync(files.otherKey, other.key);
    const tls = (cert: string, key: string) => [...local, "--no-metrics", "--data", join(root, "tls-data"), "--tls-cert", cert, "--tls-key", key];
    // Before: "tooldb-dht: error:0480006C:PEM routines::no start line", naming neither.
    assert.match(await failsWith(tls(junk, files.key), 1), new RegExp(`--tls-cert ${junk}: not a PEM certificate \\(.+\\)`));
    assert.match(await failsWith(tls(files.cert, junk), 1), new RegExp(`--tls-key ${junk}: not a PEM private key.*\\(.+\\)`));
    assert.match(await failsWith(tls(files.cert, files.otherKey), 1), new RegExp(`--tls-key ${files.otherKey} is not the key of the certificate in --tls-cert ${files.cert}`));
    assert.deepEqual(readdirSync(root).filter((f) => f.startsWith("tls-data")), [], "no data directory was made");
    // The pair itself serves wss://.
    const served = await run(tls(files.cert, files.key), (line, child) => line.startsWith("Announcing on DHT topic") && child.kill("SIGTERM"), 15_000).exited;
    assert.equal(served.code, 0, served.err);
    assert.match(served.out, /^Server running on 127\.0\.0\.1:\d+ \(TLS\)$/m);
  });
});
