import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { errorText } from "../base/errors.js";
import { HYPERDHT_BOOTSTRAP_ENV, type HyperswarmNetworkOptions } from "../network/hyperswarm-network.js";
import { DHTServer } from "../platform/dht-server.js";
import { isDialableWsUrl } from "../limits/peer-url.js";
import { UsageError, booleanFlag, hostPortList, listFlag, portFlag, stringFlag, type ParsedArgs } from "./args.js";
import { bootstrapList } from "./bootstrap.js";
import type { Out } from "./command.js";
import { dataPaths, repairDamaged } from "./data-dir.js";
import { type Ops, checkMetricsFlags, httpLimitsFromFlags, limitsFromFlags, startOps } from "./ops.js";
import { StatusHistory } from "../metrics/status-history.js";
import { PeerReport } from "./peer-report.js";
import { addStatusFunction } from "./status-function.js";
import { readTlsFiles } from "./tls-files.js";
import { BUNDLE_URL, publicUrlFor, startWebFront } from "./web.js";

/** `tooldb-dht serve` (flags and help in commands.ts). */
export async function serve(args: ParsedArgs, out: Out): Promise<undefined> {
  const topic = stringFlag(args, "topic", "TOPIC");
  if (!topic) throw new UsageError("serve needs --topic (or TOPIC)");
  const host = stringFlag(args, "host", "HOST", "0.0.0.0")!;
  const port = portFlag(args, "port", "PORT", 9000);
  const bootstrap = bootstrapList(args, out);
  const hyperswarm = hyperswarmOption(args, out);
  const limits = limitsFromFlags(args);
  const httpLimits = httpLimitsFromFlags(args);
  checkMetricsFlags(args);
  const legacyRecords = booleanFlag(args, "legacy-records");
  const tlsCert = stringFlag(args, "tls-cert", "TLS_CERT");
  const tlsKey = stringFlag(args, "tls-key", "TLS_KEY");
  if (!tlsCert !== !tlsKey) throw new UsageError(`${tlsCert ? "--tls-cert" : "--tls-key"} needs ${tlsCert ? "--tls-key" : "--tls-cert"} too (TLS_CERT and TLS_KEY likewise)`);
  const tls = tlsCert && tlsKey ? await readTlsFiles(tlsCert, tlsKey) : undefined;
  const publicUrl = publicUrlFlag(args);
  const publicHost = stringFlag(args, "public-host", "PUBLIC_HOST");
  const webDir = stringFlag(args, "web-dir");
  if (webDir !== undefined) await checkWebDir(webDir);
  const web = booleanFlag(args, "web") || webDir !== undefined;
  const dataDir = resolve(stringFlag(args, "data", "DATA_DIR", `tooldb-data-${port}`)!);
  const paths = dataPaths(dataDir);
  out(`Data directory: ${dataDir} (records; node keys in ${paths.keys}, sync index in ${paths.sync}, peer cache in ${paths.peers})`);
  if (booleanFlag(args, "repair")) await repairDamaged(paths, out);
  if (legacyRecords) out("--legacy-records: accepting tool-db 2.6.6 records (their hash does not cover the key: replayable under other keys)");
  if (web) await access(BUNDLE_URL).catch((err: unknown) => out(`warning: the status page cannot load the browser bundle (${errorText(err)}); rebuild with npm run build`));
  // TLS and the status page need an HTTP(S) server of our own; WebSocket links upgrade on it.
  const front = tls || web ? await startWebFront({ host, port, topic, tls, web, webDir, limits: httpLimits }) : undefined;
  const boundPort = front?.port ?? port;
  let ops: Ops | undefined;
  const server = new DHTServer(topic, host, boundPort, {
    bootstrap,
    dataDir,
    db: {
      publicHost,
      publicUrl: publicUrlFor(publicUrl, front?.secure ?? false, publicHost ?? host, boundPort),
      httpServer: front?.server,
      legacyRecords,
      limits,
    },
    handleSignals: true,
    onSignalStop: (signal) =>
      void Promise.all([front?.close(), ops?.stop(), history.stop()]).then(() => {
        report.summary();
        out(`${signal}: left the DHT, closed sockets and store`);
      }),
    hyperswarm,
  });
  const report = new PeerReport(out);
  const dhtFound = report.found;
  const history = new StatusHistory(server.db);
  addStatusFunction(server.db, dhtFound, history);
  // The DHT answers a lookup with this server's own announce too: not a peer found (nor listed on the status page).
  server.onPeerFound = (p) => {
    if (!server.isOwnAddress(p)) report.peerFound(p);
  };
  server.onPeerConnected = (p) => report.peerConnected(p);
  server.onPeerDisconnected = (p) => out(`peer disconnected: ${p.peerId}`);
  server.onMechanismFailed = (mechanism, err) =>
    out(
      mechanism === "peer-cache"
        ? `warning: the peer cache in ${paths.peers} could not start: this run does not dial the servers verified before first; serve --repair repairs it, or makes it anew empty. Why: ${errorText(err)}`
        : `warning: discovery by ${mechanism} could not start: ${errorText(err)}`,
    );
  server.db.on("dial-failed", (e) => report.dialFailed(e));
  try {
    await server.start();
  } catch (err) {
    await Promise.allSettled([server.stop(), front?.close()]);
    throw err;
  }
  history.start();
  out(`Server running on ${host}:${server.port}${front?.secure ? " (TLS)" : ""}`);
  if (webDir) out(`Serving the files of ${webDir} at /<name>`);
  if (web) out(`Status page: ${front!.secure ? "https" : "http"}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${server.port}/`);
  out(`Announcing on DHT topic: ${topic}${bootstrap ? ` (bootstrap ${bootstrap.join(",")})` : " (public mainline DHT)"}`);
  if (hyperswarm) out(`Joined Hyperswarm topic sha256(${topic})`);
  ops = await startOps(server, args, out, front?.guard);
  return undefined;
}

/** --web-dir names a directory that is there (a typo would only show as 404s): a usage error otherwise. */
async function checkWebDir(dir: string): Promise<void> {
  const info = await stat(dir).catch((err: unknown) => Promise.reject(new UsageError(`--web-dir ${dir}: cannot read it (${errorText(err)})`)));
  if (!info.isDirectory()) throw new UsageError(`--web-dir ${dir}: not a directory`);
  await access(dir, constants.R_OK | constants.X_OK).catch((err: unknown) => Promise.reject(new UsageError(`--web-dir ${dir}: cannot read it (${errorText(err)})`)));
}

/** --public-url (else PUBLIC_URL) when browsers can dial it: checked before anything is made, as a usage error. */
function publicUrlFlag(args: ParsedArgs): string | undefined {
  const url = stringFlag(args, "public-url", "PUBLIC_URL");
  if (url === undefined || isDialableWsUrl(url)) return url;
  const source = typeof args.flags.get("public-url") === "string" ? "--public-url" : "PUBLIC_URL";
  throw new UsageError(`${source} must be a ws:// or wss:// URL with a concrete host (no 0.0.0.0, no user:password@), got "${url.slice(0, 80)}"`);
}

/** --hyperswarm with --hyperdht-bootstrap (else TOOLDB_HYPERDHT_BOOTSTRAP, else public HyperDHT). */
function hyperswarmOption(args: ParsedArgs, out: Out): HyperswarmNetworkOptions | undefined {
  const flag = listFlag(args, "hyperdht-bootstrap");
  if (!booleanFlag(args, "hyperswarm")) {
    if (flag) out("warning: --hyperdht-bootstrap has no effect without --hyperswarm");
    return undefined;
  }
  const env = process.env[HYPERDHT_BOOTSTRAP_ENV]?.split(",").map((s) => s.trim()).filter(Boolean);
  const bootstrap = flag ? hostPortList(flag, "--hyperdht-bootstrap") : env?.length ? hostPortList(env, HYPERDHT_BOOTSTRAP_ENV) : undefined;
  out(bootstrap ? `HyperDHT bootstrap: ${bootstrap.join(",")}` : "HyperDHT bootstrap: public nodes");
  return { bootstrap };
}
