#!/usr/bin/env node
/**
 * The `tooldb-dht` command. This is the one place that prints for humans.
 */
import { ToolDb } from "../platform/node.js";
import { errorText } from "../base/errors.js";
import { startBootstrapNode } from "../discovery/bootstrap-node.js";
import { DHTServer } from "../platform/dht-server.js";
import { Discovery } from "../discovery/discovery.js";
import { BOOTSTRAP_ENV, envBootstrap } from "../discovery/env-bootstrap.js";
import { dialKey } from "../network/dial-target.js";
import { type HyperswarmNetworkOptions, hyperdhtBootstrapFromEnv } from "../network/hyperswarm-network.js";
import { listFlag, parseArgs, portFlag, stringFlag, type ParsedArgs } from "./args.js";
import { runDemo } from "./demo.js";
import { nodeStatus } from "./status.js";
import { StatusHistory } from "../metrics/status-history.js";
import { publicUrlFor, startWebFront } from "./web.js";
import { OPS_USAGE, type Ops, limitsFromFlags, startOps, statusCommand, version } from "./ops.js";

const USAGE = `tooldb-dht <command> [options]

Commands:
  serve --topic T --port P [--host H] [--public-host NAME] [--public-url URL]
        [--tls-cert FILE --tls-key FILE] [--web] [--web-dir DIR] [--data DIR] [--bootstrap host:port,...] [--legacy-records]
        [--hyperswarm [--hyperdht-bootstrap host:port,...]]
        Run a ToolDb server that announces T -> P on the mainline DHT and links
        with the other servers of T. HOST, PORT and TOPIC env vars work too.
        --public-host is the host put in the signed peer record (default: --host).
        --public-url ws(s)://NAME[:PORT][/PATH] is the URL browsers dial, signed
        into the peer record (e.g. behind a TLS proxy); default ws://host:port.
        --tls-cert FILE --tls-key FILE serve wss:// (and https) on PORT.
        --web serves a status page on PORT (http(s)://host:PORT/) that runs
        the browser bundle: known servers, live charts, clients, a live key.
        --web-dir DIR (implies --web) also serves DIR's files by name at
        /<name> (.html .js .css .json .svg .png), e.g. an app's own page.
        --legacy-records accepts and writes tool-db 2.6.6 records, so 2.6.6
        clients can put and get. RISK: their hash does not cover the key, so
        anyone can replay a signed record under another key (a user's
        ":address.profile" copied to ":address.admin", say). Only for
        migrating 2.6.6 apps.
        --hyperswarm also serves over Hyperswarm (joins sha256(T) on HyperDHT,
        holes through NATs); --hyperdht-bootstrap host:port,... (or
        TOOLDB_HYPERDHT_BOOTSTRAP) for a private HyperDHT.
${OPS_USAGE}
  peers --topic T [--bootstrap host:port,...] [--wait SECONDS]
        Look T up on the DHT, print what it says, then verify each peer
        (signed ToolDb handshake on topic T).
  bootstrap --port P [--host H]
        Run a DHT bootstrap node for a private network.

Default bootstrap of serve and peers (and of every DHTServer, DHTClient and
DC() in code): ${BOOTSTRAP_ENV}=host:port,... when set, else the public
mainline routers. --bootstrap wins over both.
  demo  Private DHT on loopback, 3 servers and 2 clients that find each other
        only through it; a put on one client is read on the other.
`;

const out = (line: string) => process.stdout.write(`${line}\n`);

async function serve(args: ParsedArgs): Promise<void> {
  const topic = stringFlag(args, "topic", "TOPIC");
  if (!topic) throw new Error("serve needs --topic (or TOPIC)");
  const host = stringFlag(args, "host", "HOST", "0.0.0.0")!;
  const port = portFlag(args, "port", "PORT", 9000);
  const bootstrap = bootstrapList(args);
  const legacyRecords = args.flags.get("legacy-records") === true;
  if (legacyRecords) out("--legacy-records: accepting tool-db 2.6.6 records (their hash does not cover the key: replayable under other keys)");
  const tlsCert = stringFlag(args, "tls-cert", "TLS_CERT");
  const tlsKey = stringFlag(args, "tls-key", "TLS_KEY");
  const web = args.flags.get("web") === true;
  // TLS and the status page need an HTTP(S) server of our own; WebSocket links upgrade on it.
  const webDir = stringFlag(args, "web-dir");
  const front = tlsCert || tlsKey || web || webDir ? await startWebFront({ host, port, topic, tlsCert, tlsKey, web: web || webDir !== undefined, webDir }) : undefined;
  const publicHost = stringFlag(args, "public-host", "PUBLIC_HOST");
  const boundPort = front?.port ?? port;
  let ops: Ops | undefined;
  const server = new DHTServer(topic, host, boundPort, {
    bootstrap,
    dataDir: stringFlag(args, "data", "DATA_DIR", `tooldb-data-${port}`),
    db: {
      publicHost,
      publicUrl: publicUrlFor(stringFlag(args, "public-url", "PUBLIC_URL"), front?.secure ?? false, publicHost ?? host, boundPort),
      httpServer: front?.server,
      legacyRecords,
      limits: limitsFromFlags(args),
    },
    handleSignals: true,
    onSignalStop: (signal) =>
      void Promise.all([front?.close(), ops?.stop(), history.stop()]).then(() => out(`${signal}: left the DHT, closed sockets and store`)),
    hyperswarm: hyperswarmOption(args),
  });
  const dhtFound = new Set<string>();
  const history = new StatusHistory(server.db);
  server.db.addServerFunction("status", (call) => nodeStatus(server.db, dhtFound, history, (call as { since?: unknown } | undefined)?.since));
  server.onPeerFound = (p) => {
    dhtFound.add(dialKey(p.host, p.port));
    out(`DHT peer found: ${p.host}:${p.port}`);
  };
  server.onPeerConnected = (p) => out(`peer connected: ${p.peerId} (${p.isServer ? "server" : "client"}${p.host ? ` ${p.host}:${p.port}` : ""})`);
  server.onPeerDisconnected = (p) => out(`peer disconnected: ${p.peerId}`);
  server.db.on("dial-failed", (e) => e.final && out(`gave up on ${e.host}:${e.port}: ${e.reason}`));
  await server.start();
  history.start();
  out(`Server running on ${host}:${server.port}${front?.secure ? " (TLS)" : ""}`);
  if (webDir) out(`Serving the files of ${webDir} at /<name>`);
  if (web || webDir) out(`Status page: ${front!.secure ? "https" : "http"}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${server.port}/`);
  out(`Announcing on DHT topic: ${topic}${bootstrap ? ` (bootstrap ${bootstrap.join(",")})` : " (public mainline DHT)"}`);
  if (args.flags.get("hyperswarm") === true) out(`Joined Hyperswarm topic sha256(${topic})`);
  ops = await startOps(server, args, out);
}

/** --hyperswarm with --hyperdht-bootstrap (else TOOLDB_HYPERDHT_BOOTSTRAP, else public HyperDHT). */
function hyperswarmOption(args: ParsedArgs): HyperswarmNetworkOptions | undefined {
  if (args.flags.get("hyperswarm") !== true) return undefined;
  const bootstrap = listFlag(args, "hyperdht-bootstrap") ?? hyperdhtBootstrapFromEnv()?.map((b) => `${b.host}:${b.port}`);
  out(bootstrap ? `HyperDHT bootstrap: ${bootstrap.join(",")}` : "HyperDHT bootstrap: public nodes");
  return { bootstrap };
}

async function peers(args: ParsedArgs): Promise<void> {
  const topic = stringFlag(args, "topic", "TOPIC");
  if (!topic) throw new Error("peers needs --topic (or TOPIC)");
  const waitMs = Number(stringFlag(args, "wait", undefined, "5")) * 1000;
  const discovery = new Discovery({ bootstrap: bootstrapList(args), fastInterval: 1000 });
  const found = new Map<string, { host: string; port: number }>();
  discovery.on("peer", (_id, p) => {
    const key = dialKey(p.host, p.port);
    if (found.has(key)) return;
    found.set(key, p);
    out(`DHT says: ${key}`);
  });
  discovery.join(topic);
  await new Promise((r) => setTimeout(r, waitMs));
  await discovery.destroy();
  out(`${found.size} address(es) announced on "${topic}". Verifying...`);
  const db = new ToolDb({ topic, handshakeTimeout: 3000 });
  await db.ready;
  await Promise.all(
    [...found.values()].map(
      (p) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => done(`no answer`), 5000);
          const done = (line: string) => {
            clearTimeout(timer);
            db.off("peer-connect", onConnect);
            db.off("dial-failed", onFailed);
            out(`${dialKey(p.host, p.port)}: ${line}`);
            resolve();
          };
          const onConnect = (i: { host?: string; port?: number; peerId: string; isServer: boolean }) =>
            i.host === p.host && i.port === p.port && done(`verified ToolDb ${i.isServer ? "server" : "node"} ${i.peerId}`);
          const onFailed = (e: { host: string; port: number; reason: string }) => e.host === p.host && e.port === p.port && done(`refused: ${e.reason}`);
          db.on("peer-connect", onConnect);
          db.on("dial-failed", onFailed);
          db.network.connectTo(p.host, p.port, { maxRetries: 0 });
        }),
    ),
  );
  await db.close();
}

/** --bootstrap, else the environment variable (said when in force), else undefined (public routers). */
function bootstrapList(args: ParsedArgs): string[] | undefined {
  const flag = listFlag(args, "bootstrap");
  if (flag) return flag;
  const env = envBootstrap();
  if (env) out(`DHT bootstrap from ${BOOTSTRAP_ENV}: ${env.join(",")}`);
  return env;
}

async function bootstrap(args: ParsedArgs): Promise<void> {
  const node = await startBootstrapNode({ host: stringFlag(args, "host", "HOST", "0.0.0.0"), port: portFlag(args, "port", "PORT", 6881) });
  const a = node.address();
  out(`DHT bootstrap node on ${a.host}:${a.port} — pass --bootstrap ${a.host}:${a.port} to servers and clients`);
  const stop = (signal: string) => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    void node.close().then(() => out(`${signal}: bootstrap node closed`));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  switch (args.command) {
    case "serve":
      return serve(args);
    case "peers":
      return peers(args);
    case "bootstrap":
      return bootstrap(args);
    case "demo":
      return runDemo(out);
    case "status":
      if (!(await statusCommand(args, out))) process.exitCode = 1;
      return;
    case "--version":
    case "version":
      out(version());
      return;
    case undefined:
    case "help":
    case "--help":
      out(USAGE);
      return;
    default:
      throw new Error(`unknown command ${args.command}\n\n${USAGE}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`tooldb-dht: ${errorText(err)}\n`);
  process.exitCode = 1;
});
