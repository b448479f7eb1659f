/**
 * What `tooldb-dht serve` runs with: its flags and environment, each value
 * checked (TLS files read and tried, --web-dir looked at), in the order
 * serve took them. This module and what it imports load no DHT,
 * transport, store or node code: commands.ts loads serve.ts, which loads
 * all of those, only once these options are here, so a mistake is refused
 * in a tenth of the time and before the data directory is made.
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { errorText } from "../base/errors.js";
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from "../limits/http-guard.js";
import type { Limits } from "../limits/limits.js";
import { isDialableWsUrl } from "../limits/peer-url.js";
import { HYPERDHT_BOOTSTRAP_ENV } from "../network/hyperswarm-bootstrap.js";
import type { HyperswarmNetworkOptions } from "../network/hyperswarm-options.js";
import { UsageError, booleanFlag, hostPortList, limitNumber, listFlag, portFlag, secondsFlag, stringFlag, type ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import type { LIMIT_FLAG_NAMES } from "./defaults.js";
import { bootstrapList } from "./options.js";
import { type TlsPems, readTlsFiles } from "./tls-files.js";

export interface ServeOptions {
  topic: string;
  host: string;
  port: number;
  bootstrap: string[] | undefined;
  hyperswarm: HyperswarmNetworkOptions | undefined;
  limits: Partial<Limits>;
  httpLimits: HttpLimits;
  legacyRecords: boolean;
  tls: TlsPems | undefined;
  publicUrl: string | undefined;
  publicHost: string | undefined;
  webDir: string | undefined;
  web: boolean;
  /** Absolute. */
  dataDir: string;
  repair: boolean;
}

/** serve's options, or a refusal: UsageError (exit 2), or an Error for TLS files that TLS cannot use (exit 1). */
export async function serveOptions(args: ParsedArgs, out: Out): Promise<ServeOptions> {
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
  const repair = booleanFlag(args, "repair");
  return { topic, host, port, bootstrap, hyperswarm, limits, httpLimits, legacyRecords, tls, publicUrl, publicHost, webDir, web, dataDir, repair };
}

const LIMIT_FLAGS: Array<[flag: (typeof LIMIT_FLAG_NAMES)[number], limit: keyof Limits, scale?: number]> = [
  ["max-connections", "maxConnections"],
  ["max-unverified", "maxUnverifiedConnections"],
  ["max-per-ip", "maxConnectionsPerIp"],
  ["message-rate", "messageRate"],
  ["message-burst", "messageBurst"],
  ["max-outstanding", "maxOutstandingPerPeer"],
  ["max-send-backlog", "maxSendBacklog"],
  ["max-store-keys", "maxStoreKeys"],
  ["anonymous-key-share", "anonymousKeyShare"],
  ["max-keys-per-author", "maxKeysPerAuthor"],
  ["max-subscriptions", "maxSubscriptions"],
  ["ban-duration", "banDuration", 1000],
];

/** The limits given as flags (each checked while parsing: commands.ts LIMIT_FLAG_SPECS). */
function limitsFromFlags(args: ParsedArgs): Partial<Limits> {
  const limits: Record<string, unknown> = {};
  for (const [flag, limit, scale = 1] of LIMIT_FLAGS) {
    const raw = stringFlag(args, flag);
    if (raw !== undefined) limits[limit] = limitNumber(raw) * scale;
  }
  const exempt = listFlag(args, "exempt-ips");
  if (exempt) limits.exemptIps = exempt;
  return limits as Partial<Limits>;
}

/** --no-metrics is the alternative to --metrics-port and --metrics-host: both at once is a usage error. */
function checkMetricsFlags(args: ParsedArgs): void {
  if (!booleanFlag(args, "no-metrics")) return;
  const given = ["metrics-port", "metrics-host"].find((flag) => args.flags.has(flag));
  if (given) throw new UsageError(`--no-metrics and --${given} are alternatives: give one of them`);
}

/** The HTTP fronts' caps and timeouts: --max-per-ip and --exempt-ips as for links, and the two timeouts. */
function httpLimitsFromFlags(args: ParsedArgs): HttpLimits {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS };
  const perIp = stringFlag(args, "max-per-ip");
  if (perIp !== undefined) limits.maxConnectionsPerIp = limitNumber(perIp);
  limits.exemptIps = listFlag(args, "exempt-ips") ?? limits.exemptIps;
  limits.headersTimeout = secondsFlag(args, "http-headers-timeout", DEFAULT_HTTP_LIMITS.headersTimeout / 1000) * 1000;
  limits.idleTimeout = secondsFlag(args, "http-idle-timeout", DEFAULT_HTTP_LIMITS.idleTimeout / 1000) * 1000;
  limits.requestTimeout = Math.max(limits.requestTimeout, limits.headersTimeout);
  return limits;
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
