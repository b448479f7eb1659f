import { access } from "node:fs/promises";
import { errorText } from "../base/errors.js";
import { DHTServer } from "../platform/dht-server.js";
import type { ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import { dataPaths, repairDamaged } from "./data-dir.js";
import { type Ops, startOps } from "./ops.js";
import { fail } from "./output.js";
import { exitOnSignal } from "./signal-exit.js";
import { StatusHistory } from "../metrics/status-history.js";
import { PeerReport } from "./peer-report.js";
import type { ServeOptions } from "./serve-options.js";
import { addStatusFunction } from "./status-function.js";
import { BUNDLE_URL, publicUrlFor, startWebFront } from "./web.js";

/**
 * `tooldb-dht serve` (flags and help in commands.ts) with its options,
 * checked by serveOptions before this module (and the library) loads;
 * `args` for the metrics flags startOps reads.
 */
export async function serve(options: ServeOptions, args: ParsedArgs, out: Out): Promise<undefined> {
  const { topic, host, port, bootstrap, hyperswarm, limits, httpLimits, legacyRecords, tls, publicUrl, publicHost, webDir, web, dataDir } = options;
  const paths = dataPaths(dataDir);
  out(`Data directory: ${dataDir} (records; node keys in ${paths.keys}, sync index in ${paths.sync}, peer cache in ${paths.peers})`);
  if (options.repair) await repairDamaged(paths, out);
  if (legacyRecords) out("--legacy-records: accepting tool-db 2.6.6 records (their hash does not cover the key: replayable under other keys)");
  if (web) await access(BUNDLE_URL).catch((err: unknown) => out(`warning: the status page cannot load the browser bundle (${errorText(err)}); rebuild with npm run build`));
  // TLS and the status page need an HTTP(S) server of our own; WebSocket links upgrade on it.
  const front = tls || web ? await startWebFront({ host, port, topic, tls, web, webDir, limits: httpLimits }) : undefined;
  const boundPort = front?.port ?? port;
  let ops: Promise<Ops | undefined> | undefined;
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
  // The CLI, not the library, handles the signals: the process ends once the stop ended, or after a bound on it.
  exitOnSignal(
    async (signal) => {
      // Once stopping, the start-up warnings (no DHT node answered: the DHT is being left) say nothing true: quiet them at once, not after the stop (slow on a stalled disk).
      const started = ops!.catch(() => undefined);
      void started.then((o) => o?.quiet());
      try {
        await server.stop();
      } finally {
        await Promise.all([front?.close(), started.then((o) => o?.stop()), history.stop()]);
      }
      report.summary();
      out(`${signal}: left the DHT, closed sockets and store`);
    },
    out,
    fail,
  );
  out(`Server running on ${host}:${server.port}${front?.secure ? " (TLS)" : ""}`);
  if (webDir) out(`Serving the files of ${webDir} at /<name>`);
  if (web) out(`Status page: ${front!.secure ? "https" : "http"}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${server.port}/`);
  out(`Announcing on DHT topic: ${topic}${bootstrap ? ` (bootstrap ${bootstrap.join(",")})` : " (public mainline DHT)"}`);
  if (hyperswarm) out(`Joined Hyperswarm topic sha256(${topic})`);
  // Set before any signal can be handled (no await since exitOnSignal), so a stop that begins while the ops start still quiets and stops them.
  ops = startOps(server, args, out, { limits: httpLimits, webGuard: front?.guard });
  await ops;
  return undefined;
}
