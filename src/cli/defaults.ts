/** Defaults of the commands, shared by their help (commands.ts) and their code. */

export const DEFAULT_METRICS_HOST = "127.0.0.1";
/** The metrics port is the server port plus this, so servers on one host never collide on it. */
export const METRICS_PORT_OFFSET = 10_000;
export const DEFAULT_DHT_WARN_AFTER_S = 10;

/** Where `serve --port P` serves /metrics and /healthz unless --metrics-port says: P + 10000, or any free port when that is not a port. */
export function metricsPortFor(serverPort: number): number {
  const port = serverPort + METRICS_PORT_OFFSET;
  return serverPort > 0 && port <= 65535 ? port : 0;
}

/** The limit flags of serve, in the order of the help. */
export const LIMIT_FLAG_NAMES = [
  "max-connections",
  "max-unverified",
  "max-per-ip",
  "message-rate",
  "message-burst",
  "max-outstanding",
  "max-send-backlog",
  "max-store-keys",
  "anonymous-key-share",
  "max-keys-per-author",
  "max-subscriptions",
  "ban-duration",
] as const;

export const DEFAULT_HYPERDHT_BOOTSTRAP_PORT = 49737;
