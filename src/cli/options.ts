/**
 * What peers, bootstrap and status run with, each value of their flags and
 * environment checked, and the --bootstrap list that serve and peers share.
 * Like serve-options.ts, this loads no DHT, transport, store or node code:
 * commands.ts loads a command's own module (which loads those) only once
 * its options are here, so a mistake is refused at once and before
 * anything is made.
 */
import { BOOTSTRAP_ENV, envBootstrap } from "../discovery/env-bootstrap.js";
import { UsageError, booleanFlag, hostPortList, listFlag, portFlag, secondsFlag, stringFlag, type ParsedArgs } from "./args.js";
import type { Out } from "./command.js";
import { DEFAULT_HYPERDHT_BOOTSTRAP_PORT, DEFAULT_METRICS_HOST, metricsPortFor } from "./defaults.js";

/** --bootstrap (checked: host:port each), else the environment variable (said when in force), else undefined (public routers). */
export function bootstrapList(args: ParsedArgs, out: Out): string[] | undefined {
  const flag = listFlag(args, "bootstrap");
  if (flag) return hostPortList(flag, "--bootstrap");
  if (args.flags.get("bootstrap") !== undefined) hostPortList([String(args.flags.get("bootstrap"))], "--bootstrap");
  const env = fromEnv(envBootstrap);
  if (env) out(`DHT bootstrap from ${BOOTSTRAP_ENV}: ${env.join(",")}`);
  return env;
}

/** A variable's value read by `read`; a bad value is a usage error (exit 2), as a bad flag is. */
function fromEnv<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** `tooldb-dht peers`: the topic looked up, for how long, on which DHT. */
export interface PeersOptions {
  topic: string;
  waitS: number;
  bootstrap: string[] | undefined;
}

export function peersOptions(args: ParsedArgs, out: Out): PeersOptions {
  const topic = stringFlag(args, "topic", "TOPIC");
  if (!topic) throw new UsageError("peers needs --topic (or TOPIC)");
  const waitS = secondsFlag(args, "wait", 5);
  return { topic, waitS, bootstrap: bootstrapList(args, out) };
}

/** `tooldb-dht bootstrap`: where its node binds, and which DHT it is a bootstrap of. */
export interface BootstrapOptions {
  host: string;
  port: number;
  hyperdht: boolean;
}

export function bootstrapOptions(args: ParsedArgs): BootstrapOptions {
  const host = stringFlag(args, "host", "HOST", "0.0.0.0")!;
  const hyperdht = booleanFlag(args, "hyperdht");
  const port = portFlag(args, "port", "PORT", hyperdht ? DEFAULT_HYPERDHT_BOOTSTRAP_PORT : 6881);
  return { host, port, hyperdht };
}

/** `tooldb-dht status`: where the server's /healthz answers. */
export interface StatusTarget {
  host: string;
  port: number;
}

export function statusTarget(args: ParsedArgs): StatusTarget {
  const host = stringFlag(args, "metrics-host", undefined, DEFAULT_METRICS_HOST)!;
  const port = portFlag(args, "metrics-port", undefined, metricsPortFor(portFlag(args, "port", "PORT", 9000)));
  return { host, port };
}
