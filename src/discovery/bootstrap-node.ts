/// <reference path="../../types/bittorrent-dht.d.ts" preserve="true" />
import DHT from "bittorrent-dht";
import { ErrorCode, ToolDbError } from "../base/errors.js";
import { createLogger } from "../base/logger.js";
import { isPort } from "./options.js";
import { capGetPeersReplies } from "./peer-reply-cap.js";
import { limitAnnouncesPerAddress } from "./announce-quota.js";
import { isBindFailure } from "./socket-errors.js";

const log = createLogger("discovery:bootstrap");

export interface BootstrapNodeOptions {
  /** Bind address. Default '0.0.0.0'. */
  host?: string;
  /** UDP port. Default 6881 (0 = random). */
  port?: number;
  /**
   * Other bootstrap nodes of the same private network to mesh with, as
   * 'host:port'. Default false: this node is a seed and contacts nobody.
   */
  bootstrap?: string[] | false;
  /** Expiry (ms) of stored peer records. Default 15 min. */
  maxAge?: number;
  /** k-rpc query timeout (ms). Default 1000. */
  timeout?: number;
}

export interface BootstrapNode {
  readonly dht: DHT;
  address(): { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Runs a plain DHT node that others list in `bootstrap` to form a private
 * network (used by `tooldb-dht bootstrap --port P`). Resolves once bound;
 * rejects with NETWORK_FAILED on a bind error (e.g. EADDRINUSE).
 */
export function startBootstrapNode(opts: BootstrapNodeOptions = {}): Promise<BootstrapNode> {
  const host = opts.host ?? "0.0.0.0";
  const port = opts.port ?? 6881;
  if (!isPort(port, true)) {
    return Promise.reject(new ToolDbError(ErrorCode.INVALID_ARGUMENT, `port must be in 0..65535, got ${String(port)}`));
  }
  const dht = new DHT({
    bootstrap: opts.bootstrap ?? false,
    maxAge: opts.maxAge ?? 15 * 60_000,
    timeout: opts.timeout ?? 1000,
  });
  // At most 100 peers per get_peers reply, sampled at random (see peer-reply-cap.ts).
  capGetPeersReplies(dht);
  // At most 32 ports of one IP a topic, 64 over all topics (see announce-quota.ts).
  limitAnnouncesPerAddress(dht);
  // Always an 'error' listener, so no socket error can ever crash the process.
  dht.on("error", (err) => log(`error: ${err.message}`));
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= new Promise<void>((resolve) => dht.destroy(() => resolve())));
  const node: BootstrapNode = {
    dht,
    address: () => {
      const a = dht.address();
      return { host: a.address, port: a.port };
    },
    close,
  };
  return new Promise<BootstrapNode>((resolve, reject) => {
    const onError = (err: Error) => {
      dht.off("error", onError);
      dht.off("listening", onListening);
      void close().then(() =>
        reject(new ToolDbError(ErrorCode.NETWORK_FAILED, `bootstrap node failed to bind ${host}:${port}: ${err.message}`, err)),
      );
    };
    const onListening = () => {
      dht.off("error", onError);
      const a = node.address();
      log(`bootstrap node listening on ${a.host}:${a.port}`);
      resolve(node);
    };
    dht.once("error", onError);
    dht.once("listening", onListening);
    dht.on("warning", (err) => {
      if (isBindFailure(err, dht.listening)) onError(err);
      else log(`warning: ${err.message}`);
    });
    dht.listen(port, host);
  });
}
