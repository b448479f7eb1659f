/**
 * Every `tooldb-dht` command: its flags, its help and where its code is.
 * Only this file, args.ts and the option checks (options.ts,
 * serve-options.ts) load before a command's own module: `--help` and
 * mistakes in flags, values or the environment answer without loading the
 * library (whose modules take most of a short run's time), and each
 * command loads what it needs once its options are checked.
 */
import { BOOTSTRAP_ENV } from "../discovery/env-bootstrap.js";
import { DEFAULT_HTTP_LIMITS } from "../limits/http-guard.js";
import { HYPERDHT_BOOTSTRAP_ENV } from "../network/hyperswarm-bootstrap.js";
import { type FlagSpec, type FlagSpecs, isAmount, isCount, isHostPortList, isIpList, isPath, isPort, isQuota, isRate, isSeconds, isShare } from "./args.js";
import { type Command, bool, str } from "./command.js";
import { DEFAULT_DHT_WARN_AFTER_S, DEFAULT_HYPERDHT_BOOTSTRAP_PORT, DEFAULT_METRICS_HOST, LIMIT_FLAG_NAMES, METRICS_PORT_OFFSET } from "./defaults.js";
import { bootstrapOptions, peersOptions, statusTarget } from "./options.js";
import { serveOptions } from "./serve-options.js";

const port = { type: "string", check: isPort } as const;
const seconds = { type: "string", check: isSeconds } as const;
const hostPorts = { type: "string", check: isHostPortList } as const;
const path = { type: "string", check: isPath } as const;
const limit = (check: NonNullable<FlagSpec["check"]>): FlagSpec => ({ type: "string", check });

/**
 * What each limit flag takes, checked with the other flags before anything
 * starts: a count or size that 0 (or a fraction) would jam the server with
 * (a burst of 0 takes no message, 0 outstanding handles none) is a whole
 * number >= 1; a quota may be 0 (it then refuses all of its kind).
 */
const LIMIT_FLAG_SPECS: Readonly<Record<(typeof LIMIT_FLAG_NAMES)[number], FlagSpec>> = {
  "max-connections": limit(isCount),
  "max-unverified": limit(isCount),
  "max-per-ip": limit(isCount),
  "message-rate": limit(isRate),
  "message-burst": limit(isCount),
  "max-outstanding": limit(isCount),
  "max-send-backlog": limit(isCount),
  "max-store-keys": limit(isQuota),
  "anonymous-key-share": limit(isShare),
  "max-keys-per-author": limit(isQuota),
  "max-subscriptions": limit(isQuota),
  "ban-duration": limit(isAmount),
};

export const OPS_USAGE = `  Limits (defaults in docs/operating-limits.md): --max-connections N,
  --max-unverified N, --max-per-ip N (also caps HTTP connections per IP on the web and metrics
  ports), --message-rate N (per peer, /s), --message-burst N, --max-outstanding N (per peer),
  --max-send-backlog BYTES, --max-store-keys N, --anonymous-key-share F, --max-keys-per-author N,
  --max-subscriptions N, --ban-duration SECONDS (0 = no bans), --exempt-ips ip,...,
  --http-headers-timeout SECONDS (default ${DEFAULT_HTTP_LIMITS.headersTimeout / 1000}), --http-idle-timeout SECONDS (default ${DEFAULT_HTTP_LIMITS.idleTimeout / 1000}).
  Counts and sizes are whole numbers >= 1 and --message-rate is > 0 (Infinity: no limit);
  --max-store-keys, --max-keys-per-author and --max-subscriptions may be 0 (refuse all).
  Metrics: /metrics and /healthz on --metrics-host H (default ${DEFAULT_METRICS_HOST}) and
  --metrics-port M (default: the server port + ${METRICS_PORT_OFFSET}, e.g. 19000 for 9000; any free
  port when the server port is 0 or above ${65535 - METRICS_PORT_OFFSET}); or --no-metrics: none of them.
  --dht-warn-after SECONDS (default ${DEFAULT_DHT_WARN_AFTER_S}): warn when no DHT node answered.
  kill -USR1 <pid> prints a one-line status.`;

/** The flags of startOps and limitsFromFlags (serve-options.ts), for the commands that run a server. */
export const OPS_FLAGS: FlagSpecs = {
  ...Object.fromEntries(LIMIT_FLAG_NAMES.map((name) => [name, LIMIT_FLAG_SPECS[name]])),
  "exempt-ips": { type: "string", check: isIpList },
  "http-headers-timeout": seconds,
  "http-idle-timeout": seconds,
  "metrics-host": str,
  "metrics-port": port,
  "no-metrics": bool,
  "dht-warn-after": seconds,
};

export const serveCommand: Command = {
  name: "serve",
  summary: "Run a server that announces its topic on the DHT and links with the other servers of it.",
  usage: `serve --topic T [--port P] [--host H] [--data DIR] [--repair] [--bootstrap host:port,...]
        [--public-host NAME] [--public-url URL] [--tls-cert FILE --tls-key FILE] [--web] [--web-dir DIR]
        [--legacy-records] [--hyperswarm [--hyperdht-bootstrap host:port,...]] [limits and metrics flags]
  Runs a ToolDb server that announces T -> P on the mainline DHT and links
  with the other servers of T. Env vars stand for flags (a flag wins): HOST, PORT,
  TOPIC, DATA_DIR, PUBLIC_HOST, PUBLIC_URL, TLS_CERT and TLS_KEY.
  --port P       WebSocket port (default 9000; 0 = any free port).
  --host H       bind address (default 0.0.0.0).
  --data DIR     the data directory (default ./tooldb-data-<port>): LevelDB records in DIR,
                 the node's keys in DIR.keys, the sync index in DIR.sync, the peer cache
                 in DIR.peers. Printed at start. A damaged LevelDB there is refused.
  --repair       first repair damaged LevelDB directories among those (classic-level's
                 repair keeps every record it can read; back the directory up first).
  --bootstrap host:port,...  private DHT (see tooldb-dht bootstrap).
  --public-host NAME  the host put in the signed peer record (default: --host).
  --public-url ws(s)://NAME[:PORT][/PATH]  the URL browsers dial, signed into the
                 peer record (e.g. behind a TLS proxy); default ws://host:port.
  --tls-cert FILE --tls-key FILE  serve wss:// (and https) on PORT.
  --web          a status page on PORT (http(s)://host:PORT/) running the browser bundle:
                 known servers, live charts, clients, a live key.
  --web-dir DIR  (implies --web) also serves DIR's files by name at /<name>
                 (.html .js .css .json .svg .png), e.g. an app's own page.
  --legacy-records  accept and write tool-db 2.6.6 records, so 2.6.6 clients can put and
                 get. RISK: their hash does not cover the key, so anyone can replay a
                 signed record under another key. Only for migrating 2.6.6 apps.
  --hyperswarm   also serve over Hyperswarm (joins sha256(T) on HyperDHT, holes through
                 NATs); --hyperdht-bootstrap host:port,... (or TOOLDB_HYPERDHT_BOOTSTRAP)
                 for a private HyperDHT (see tooldb-dht bootstrap --hyperdht).
${OPS_USAGE}
  Stops on SIGINT or SIGTERM: leaves the DHT, closes links and the store, exits 0.
  A stalled disk: ends by the signal once stopped (or 20 s after it); a second signal ends it at once.`,
  flags: {
    topic: str,
    port,
    host: str,
    data: path,
    repair: bool,
    bootstrap: hostPorts,
    "public-host": str,
    "public-url": str,
    "tls-cert": path,
    "tls-key": path,
    web: bool,
    "web-dir": path,
    "legacy-records": bool,
    hyperswarm: bool,
    "hyperdht-bootstrap": hostPorts,
    ...OPS_FLAGS,
  },
  run: async (args, out) => {
    const options = await serveOptions(args, out);
    return (await import("./serve.js")).serve(options, args, out);
  },
};

export const peersCommand: Command = {
  name: "peers",
  summary: "Look a topic up on the DHT and verify each address found (signed ToolDb handshake).",
  usage: `peers --topic T [--bootstrap host:port,...] [--wait SECONDS]
  Looks T (--topic, or TOPIC in the environment) up on the DHT for --wait
  seconds (default 5), prints the addresses it gives (the first 100), then
  verifies them (signed ToolDb handshake on topic T): 256 at most, taken in
  turn from each /24 network, 32 at a time.
  Exit 0 when at least one peer verified; 1 when the DHT is unreachable
  (no DHT node answered), nobody announced T, or no address verified.`,
  flags: { topic: str, bootstrap: hostPorts, wait: seconds },
  run: async (args, out) => {
    const options = peersOptions(args, out);
    return (await import("./peers.js")).peers(options, out);
  },
};


export const bootstrapCommand: Command = {
  name: "bootstrap",
  summary: "Run a bootstrap node for a private DHT (mainline, or HyperDHT with --hyperdht).",
  usage: `bootstrap [--port P] [--host H] [--hyperdht]
  Runs a bootstrap node that servers and clients of a private network list in
  --bootstrap (mainline DHT, UDP port P, default 6881), and prints the address
  to give them. With --hyperdht: a private HyperDHT for --hyperswarm instead
  (three HyperDHT nodes, the first on UDP port P, default ${DEFAULT_HYPERDHT_BOOTSTRAP_PORT}); pass its address
  as --hyperdht-bootstrap or ${HYPERDHT_BOOTSTRAP_ENV}.
  --host H   bind address (default 0.0.0.0: every interface).
  Stops on SIGINT or SIGTERM.`,
  flags: { port, host: str, hyperdht: bool },
  run: async (args, out) => {
    const options = bootstrapOptions(args);
    return (await import("./bootstrap.js")).bootstrap(options, out);
  },
};

export const statusCommand: Command = {
  name: "status",
  summary: "Print the status line of a running server (from its /healthz).",
  usage: `status [--port P | --metrics-port M] [--metrics-host H]
  Prints the status line of the server whose /healthz answers on H:M (default
  ${DEFAULT_METRICS_HOST}; M defaults to the server port P + ${METRICS_PORT_OFFSET}, P to 9000). Exit 1 when
  none answers or it is unhealthy.`,
  flags: { port, "metrics-port": port, "metrics-host": str },
  run: async (args, out) => {
    const target = statusTarget(args);
    return (await (await import("./ops.js")).status(target, out)) ? 0 : 1;
  },
};

export const demoCommand: Command = {
  name: "demo",
  summary: "Private DHT on loopback: 3 servers and 2 clients find each other, a put travels.",
  usage: `demo
  Runs a private DHT on loopback, 3 servers and 2 clients that find each
  other only through it; a put on one client is read on the other.`,
  flags: {},
  run: async (_args, out) => {
    await (await import("./demo.js")).runDemo(out);
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [serveCommand, peersCommand, bootstrapCommand, statusCommand, demoCommand];

export const DEFAULT_BOOTSTRAP_TEXT = `Default DHT bootstrap of serve and peers (and of every DHTServer, DHTClient and
DC() in code): ${BOOTSTRAP_ENV}=host:port,... when set, else the public
mainline routers. --bootstrap wins over both.`;
