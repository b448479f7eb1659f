/**
 * The CLI off the happy path: each mistake or failure a user met exits
 * non-zero by itself with a one-line reason on stderr (2 for a bad command
 * line, 1 for a failure); help works for every command. Each run's time is
 * printed and must be under 5 s (on an idle box they take 0.2-2 s); a run
 * that has not exited after 15 s is killed as hanging. Independent runs go
 * a few at once (eachAtOnce), each still timed and checked by itself.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import DHT from "bittorrent-dht";
import { startBootstrapNode } from "../src/entries/discovery.js";
import { topicInfoHash } from "../src/discovery/info-hash.js";
import { cliScratch, closedTcpPort, eachAtOnce, fails, failsWith, loadedModules, recordModules, run, type RunOptions } from "./helpers/cli.js";
import { silentUdpPort } from "./helpers/dht-testnet.js";

describe("tooldb-dht fails fast and says why", { timeout: 120_000 }, () => {
  const scratch = cliScratch("tooldb-cli-fail-");
  const bootstrap = () => scratch.bootstrap;

  it("an unknown flag exits 2 naming the closest known one (a typo never falls back to the public DHT)", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["serve", "--topic", "t", "--boostrap", "127.0.0.1:1"], /unknown flag --boostrap \(did you mean --bootstrap\?\)/],
      [["peers", "--topik", "t"], /did you mean --topic\?/],
      [["serv"], /unknown command "serv" \(did you mean serve\?\)/],
    ];
    await eachAtOnce(cases, async ([args, reason]) => assert.match(await failsWith(args, 2), reason));
  });

  it("bad values exit 2: --bootstrap without a port, --wait -1, a port out of range, a flag without its value", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["serve", "--topic", "t", "--bootstrap", "127.0.0.1"], /--bootstrap takes host:port.*"127\.0\.0\.1": no port/],
      [["peers", "--topic", "t", "--wait", "-1"], /--wait needs a value/],
      [["peers", "--topic", "t", "--wait=-1"], /--wait must be a number of seconds > 0 \(got -1\)/],
      [["serve", "--topic", "t", "--port", "70000"], /--port must be a port number/],
      [["serve", "--topic"], /--topic needs a value/],
      [["serve", "--topic", "t", "--max-per-ip", "lots"], /--max-per-ip must be a whole number >= 1/],
      [["serve"], /serve needs --topic/],
    ];
    await eachAtOnce(cases, async ([args, reason]) => assert.match(await failsWith(args, 2), reason));
  });

  it("serve --data /proc/nope exits 1 with the reason", async () => {
    const line = await failsWith(["serve", "--topic", "t", "--host", "127.0.0.1", "--port", "0", "--data", "/proc/nope", "--bootstrap", bootstrap(), "--no-metrics"], 1);
    assert.match(line, /\/proc\/nope/);
  });

  it("peers tells an unreachable DHT from a topic nobody announced, and exits 1 for both", async () => {
    const silent = `127.0.0.1:${await silentUdpPort()}`;
    // Each waits its 1 s: side by side.
    await Promise.all([
      failsWith(["peers", "--topic", "t", "--bootstrap", silent, "--wait", "1"], 1).then((line) => assert.match(line, /DHT unreachable: no DHT node answered within 1 s/)),
      failsWith(["peers", "--topic", "nobody-here", "--bootstrap", bootstrap(), "--wait", "1"], 1).then((line) => assert.match(line, /nobody announced "nobody-here" \(\d+ DHT node\(s\) answered/)),
    ]);
  });

  it("peers exits 1 when no announced address verifies, each with its reason", async () => {
    // A bootstrap node of its own: the shared one's table lists the DHT nodes of earlier runs, gone since, and the
    // announcer's bootstrap and announce each waited out their queries (2.5 s a step, 5-7 s in all).
    const own = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const bootstrap = () => `127.0.0.1:${own.address().port}`;
    const announcer = new DHT({ bootstrap: [bootstrap()], host: "127.0.0.1" } as ConstructorParameters<typeof DHT>[0]);
    await new Promise<void>((r) => announcer.listen(0, "127.0.0.1", () => r()));
    await new Promise<void>((r) => announcer.once("ready", () => r()));
    const port = await closedTcpPort();
    await new Promise<void>((resolve, reject) => announcer.announce(topicInfoHash("dead-topic"), port, (err) => (err ? reject(err) : resolve())));
    try {
      const result = await run(["peers", "--topic", "dead-topic", "--bootstrap", bootstrap(), "--wait", "1"]).exited;
      assert.equal(result.code, 1, result.out + result.err);
      assert.match(result.out, new RegExp(`127\\.0\\.0\\.1:${port}: refused: \\S`));
      assert.match(result.err, /none of the 1 address\(es\) announced on "dead-topic" verified/);
    } finally {
      await new Promise<void>((r) => announcer.destroy(() => r()));
      await own.close();
    }
  });

  it("status with no server exits 1 saying where it looked", async () => {
    assert.match(await failsWith(["status", "--metrics-port", String(await closedTcpPort())], 1), /no tooldb-dht server answered on http:\/\/127\.0\.0\.1:\d+\/healthz: \S/);
  });

  it("-h and --help print help for the program and for every command, exit 0", async () => {
    await eachAtOnce([["-h"], ["--help"], ["serve", "-h"], ["serve", "--help"], ["peers", "--help"], ["bootstrap", "-h"], ["status", "--help"], ["demo", "--help"]], async (args) => {
      const result = await run(args).exited;
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.err}`);
      assert.match(result.out, args.length === 1 ? /Commands:/ : new RegExp(`^tooldb-dht ${args[0]}`), args.join(" "));
    });
  });

  it("bootstrap on 0.0.0.0 prints an address a client can use, not 0.0.0.0, and loads no HyperDHT code", async () => {
    let line = "";
    const log = join(scratch.dir, "modules-bootstrap.log");
    const { exited } = run(["bootstrap", "--host", "0.0.0.0", "--port", "0"], (l, child) => {
      if (!line && l.includes("--bootstrap")) {
        line = l;
        child.kill("SIGINT");
      }
    }, undefined, recordModules(log));
    const { code } = await exited;
    assert.equal(code, 0);
    assert.match(line, /--bootstrap (\d+\.\d+\.\d+\.\d+):\d+/);
    assert.doesNotMatch(line, /--bootstrap 0\.0\.0\.0/);
    // A mainline bootstrap node needs bittorrent-dht only; hyperdht and hyperswarm are for --hyperdht.
    const loaded = loadedModules(log);
    assert.ok(loaded.some((url) => url.includes("/node_modules/bittorrent-dht/")), `the recorder saw the DHT load (${loaded.length} modules)`);
    assert.deepEqual(loaded.filter((url) => /\/node_modules\/(hyperdht|hyperswarm|dht-rpc)\/|\/dist\/src\/(network\/hyperswarm-network|discovery\/hyperdht-bootstrap)\.js$/.test(url)), []);
  });

  it("bootstrap on a busy UDP port exits 1 saying so, mainline and --hyperdht alike (hyperdht would move to another port); a --hyperdht run loads no mainline DHT code", async () => {
    const busy = createSocket("udp4");
    await new Promise<void>((r) => busy.bind(0, "127.0.0.1", r));
    const port = String(busy.address().port);
    try {
      await Promise.all([
        failsWith(["bootstrap", "--host", "127.0.0.1", "--port", port], 1).then((line) => assert.match(line, new RegExp(`failed to bind 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))),
        failsWith(["bootstrap", "--hyperdht", "--host", "127.0.0.1", "--port", port], 1).then((line) => assert.match(line, new RegExp(`HyperDHT bootstrap failed to bind 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))),
      ]);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
    // Free again: the HyperDHT bootstrap takes that very port.
    const log = join(scratch.dir, "modules-bootstrap-hyperdht.log");
    const free = await run(["bootstrap", "--hyperdht", "--host", "127.0.0.1", "--port", port], (line, child) => line.startsWith("HyperDHT bootstrap on") && child.kill("SIGTERM"), undefined, recordModules(log)).exited;
    assert.equal(free.code, 0, free.err);
    assert.match(free.out, new RegExp(`^HyperDHT bootstrap on 127\\.0\\.0\\.1:${port} `, "m"));
    // The mirror image of the mainline run's check: a HyperDHT bootstrap node needs hyperdht only, no mainline DHT code.
    const loaded = loadedModules(log);
    assert.ok(loaded.some((url) => url.includes("/node_modules/hyperdht/")), `the recorder saw hyperdht load (${loaded.length} modules)`);
    assert.deepEqual(loaded.filter((url) => /\/node_modules\/(bittorrent-dht|k-rpc)\/|\/dist\/src\/discovery\/bootstrap-node\.js$/.test(url)), []);
  });

  it("serve prints its data directory, and two servers on one host get different metrics ports (server port + 10000)", async () => {
    const seen: string[] = [];
    const ports = [await closedTcpPort(), await closedTcpPort()];
    const servers = ports.map((port, i) =>
      run(["serve", "--topic", "t2", "--host", "127.0.0.1", "--port", String(port), "--data", join(scratch.dir, `s${i}`), "--bootstrap", bootstrap()], (l, child) => {
        seen.push(l);
        if (l.startsWith("Metrics on")) child.kill("SIGINT");
      }),
    );
    const results = await Promise.all(servers.map((s) => s.exited));
    for (const [i, r] of results.entries()) {
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`Data directory: ${join(scratch.dir, `s${i}`).replace(/[/.]/g, "\\$&")} `));
      if (ports[i]! + 10_000 <= 65535) assert.match(r.out, new RegExp(`Metrics on http://127\\.0\\.0\\.1:${ports[i]! + 10_000}/metrics`));
      else assert.match(r.out, /Metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
      assert.doesNotMatch(r.out, /warning: metrics not served/);
    }
  });

  it("a wrong value for serve exits 2 before it prints or makes its data directory (flags and environment alike)", async () => {
    const cwd = mkdtempSync(join(scratch.dir, "serve-cwd-"));
    const local = ["--topic", "t", "--host", "127.0.0.1", "--no-metrics"];
    const env = (vars: Record<string, string>): RunOptions => ({ cwd, env: { ...process.env, TOOLDB_DHT_BOOTSTRAP: "", ...vars } });
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["--public-url", "ftp://x"], {}, /--public-url must be a ws:\/\/ or wss:\/\/ URL .*"ftp:\/\/x"/],
      [["--public-url", "ws://0.0.0.0:9000"], {}, /--public-url must be/],
      [[], { PUBLIC_URL: "http://a.example/" }, /PUBLIC_URL must be a ws:\/\/ or wss:\/\/ URL/],
      [["--tls-cert", "cert.pem"], {}, /--tls-cert needs --tls-key/],
      [["--tls-key", "key.pem"], {}, /--tls-key needs --tls-cert/],
      [["--tls-cert", "missing-cert.pem", "--tls-key", "missing-key.pem"], {}, /--tls-cert missing-cert\.pem: cannot read it \(.*ENOENT/],
      [["--exempt-ips", "foo"], {}, /--exempt-ips takes IP addresses .*"foo"/],
      [["--exempt-ips", "127.0.0.1,::1,10.0.0.300"], {}, /--exempt-ips .*"10\.0\.0\.300"/],
      [["--anonymous-key-share", "2"], {}, /--anonymous-key-share must be a share from 0 to 1/],
      [[], { PORT: "abc" }, /PORT \(or --port\) must be a port number/],
      [["--hyperswarm"], { TOOLDB_HYPERDHT_BOOTSTRAP: "nope" }, /TOOLDB_HYPERDHT_BOOTSTRAP takes host:port/],
    ];
    // Two at once (one cwd for all: anything made there by any of them fails the check after each).
    await eachAtOnce(cases, async ([flags, vars, reason]) => {
      const { line, out } = await fails(["serve", ...local, ...flags, "--bootstrap", bootstrap()], 2, env(vars));
      assert.match(line, reason);
      assert.match(line, /\(see --help\)$/);
      assert.doesNotMatch(out, /Data directory/, `${flags.join(" ")}: nothing is printed before the refusal`);
      assert.deepEqual(readdirSync(cwd), [], `${flags.join(" ")} ${JSON.stringify(vars)}: nothing is made`);
    });
    // No --bootstrap here (the flag wins over the variable): the variable is refused before any DHT code runs.
    await eachAtOnce([["serve", ...local, "--port", "0"], ["peers", "--topic", "t"]], async (command) => {
      const { line } = await fails(command, 2, env({ TOOLDB_DHT_BOOTSTRAP: "bad" }));
      assert.match(line, /TOOLDB_DHT_BOOTSTRAP: bad address 'bad'/);
    });
    assert.deepEqual(readdirSync(cwd), []);
  });

  it("a refused serve, peers, bootstrap or status loads none of the library's heavy modules (DHT engines, transports, LevelDB, the node)", async () => {
    // Before: each command checked its values in its own module, which loads all of them (0.5-0.7 s of CPU a refusal, 0.1 s for --help).
    const heavy = /\/node_modules\/(bittorrent-dht|k-rpc|hyperdht|dht-rpc|hyperswarm|ws|classic-level|abstract-level)\/|\/dist\/src\/(node|platform|stores|peering)\//;
    const cwd = mkdtempSync(join(scratch.dir, "refused-cwd-"));
    const junk = join(scratch.dir, "junk.pem");
    writeFileSync(junk, "junk\n");
    const local = ["serve", "--topic", "t", "--host", "127.0.0.1", "--no-metrics", "--bootstrap", bootstrap()];
    const cases: Array<[string[], Record<string, string>, number, RegExp]> = [
      [["serve"], {}, 2, /serve needs --topic/],
      [["serve", "--topic", "t", "--port", "70000"], {}, 2, /--port must be a port number/],
      [[...local, "--public-url", "ftp://x"], {}, 2, /--public-url must be a ws:\/\/ or wss:\/\/ URL/],
      [[...local, "--tls-key", "key.pem"], {}, 2, /--tls-key needs --tls-cert/],
      [[...local, "--tls-cert", "missing.pem", "--tls-key", "missing-key.pem"], {}, 2, /--tls-cert missing\.pem: cannot read it/],
      [[...local, "--tls-cert", junk, "--tls-key", junk], {}, 1, /--tls-cert .*junk\.pem: not a PEM certificate/],
      [[...local, "--web-dir", join(scratch.dir, "no-such-dir")], {}, 2, /--web-dir .*no-such-dir: cannot read it/],
      [[...local, "--metrics-port", "0"], {}, 2, /--no-metrics and --metrics-port are alternatives/],
      [[...local, "--hyperswarm"], { TOOLDB_HYPERDHT_BOOTSTRAP: "nope" }, 2, /TOOLDB_HYPERDHT_BOOTSTRAP takes host:port/],
      [["serve", "--topic", "t"], { PORT: "abc" }, 2, /PORT \(or --port\) must be a port number/],
      [["serve", "--topic", "t"], { TOOLDB_DHT_BOOTSTRAP: "bad" }, 2, /TOOLDB_DHT_BOOTSTRAP: bad address 'bad'/],
      [["peers"], {}, 2, /peers needs --topic/],
      [["peers", "--topic", "t"], { TOOLDB_DHT_BOOTSTRAP: "bad" }, 2, /TOOLDB_DHT_BOOTSTRAP: bad address 'bad'/],
      [["bootstrap"], { PORT: "abc" }, 2, /PORT \(or --port\) must be a port number/],
      [["status"], { PORT: "abc" }, 2, /PORT \(or --port\) must be a port number/],
    ];
    const logFor = (i: number) => join(scratch.dir, `modules-${i}.log`);
    const env = (vars: Record<string, string>, i: number) => recordModules(logFor(i), { cwd, env: { ...process.env, TOOLDB_DHT_BOOTSTRAP: "", PORT: "", ...vars } });
    await eachAtOnce([...cases.entries()], async ([i, [args, vars, code, reason]]) => {
      const { line, out } = await fails(args, code, env(vars, i));
      assert.match(line, reason);
      assert.doesNotMatch(out, /Data directory/);
      const loaded = loadedModules(logFor(i));
      assert.ok(loaded.some((url) => url.endsWith("/dist/src/cli/main.js")), `${args.join(" ")}: the recorder saw the CLI load (${loaded.length} modules)`);
      assert.deepEqual(loaded.filter((url) => heavy.test(url)), [], `${args.join(" ")} ${JSON.stringify(vars)}: refused after loading these`);
    });
    assert.deepEqual(readdirSync(cwd), [], "nothing is made");
    // The recorder sees them when they load: a failure past the checks (the data directory cannot be made) loaded them.
    const control = logFor(cases.length);
    await fails([...local, "--port", "0", "--data", "/proc/nope"], 1, recordModules(control));
    const loaded = loadedModules(control);
    for (const name of ["bittorrent-dht", "classic-level", "ws"]) assert.ok(loaded.some((url) => url.includes(`/node_modules/${name}/`)), `${name} loaded: ${loaded.filter((url) => url.includes("node_modules")).join(" ")}`);
  });

  it("every command refuses an unknown flag or a stray word with exit 2; help <command> prints its help", async () => {
    await eachAtOnce([["version", "--foo"], ["version", "x"], ["--version", "--foo"], ["help", "--foo"], ["--help", "--foo"], ["demo", "--foo"], ["status", "--foo"], ["bootstrap", "--foo"]], async (args) => {
      assert.match(await failsWith(args, 2), /unknown flag --foo|unexpected argument "x"/, args.join(" "));
    });
    assert.match(await failsWith(["help", "serv"], 2), /help: unknown command "serv" \(did you mean serve\?\)/);
    const help = await run(["help", "serve"]).exited;
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /^tooldb-dht serve --topic T/);
    const version = await run(["version"]).exited;
    assert.equal(version.code, 0, version.err);
  });

  it("an unknown command points at --help once", async () => {
    const line = await failsWith(["frob"], 2);
    assert.equal(line, 'tooldb-dht: unknown command "frob" (see --help)');
  });
});
