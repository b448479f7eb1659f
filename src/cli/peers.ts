import { errorText } from "../base/errors.js";
import { dhtNodeCount } from "../discovery/dht-watch.js";
import { Discovery } from "../discovery/discovery.js";
import { dialKey } from "../network/dial-target.js";
import { ToolDb } from "../platform/node.js";
import { UsageError, secondsFlag, stringFlag, type ParsedArgs } from "./args.js";
import { bootstrapList } from "./bootstrap.js";
import type { Out } from "./command.js";

/** How long one address gets to complete the signed handshake. */
const VERIFY_TIMEOUT_MS = 5000;

/** `tooldb-dht peers` (flags and help in commands.ts). */
export async function peers(args: ParsedArgs, out: Out): Promise<number> {
  const topic = stringFlag(args, "topic", "TOPIC");
  if (!topic) throw new UsageError("peers needs --topic (or TOPIC)");
  const waitS = secondsFlag(args, "wait", 5);
  const bootstrap = bootstrapList(args, out);
  const discovery = new Discovery({ bootstrap, fastInterval: 1000 });
  const found = new Map<string, { host: string; port: number }>();
  discovery.on("peer", (_id, p) => {
    const key = dialKey(p.host, p.port);
    if (found.has(key)) return;
    found.set(key, p);
    out(`DHT says: ${key}`);
  });
  discovery.join(topic);
  await new Promise((r) => setTimeout(r, waitS * 1000));
  const dhtNodes = dhtNodeCount(discovery);
  await discovery.destroy();
  const where = bootstrap ? `bootstrap ${bootstrap.join(",")}` : "public mainline DHT";
  if (found.size === 0 && dhtNodes === 0) {
    throw new Error(`DHT unreachable: no DHT node answered within ${waitS} s (${where}); check the address, UDP and the network`);
  }
  if (found.size === 0) throw new Error(`nobody announced "${topic}" (${dhtNodes} DHT node(s) answered within ${waitS} s)`);
  out(`${found.size} address(es) announced on "${topic}". Verifying...`);
  const db = new ToolDb({ topic, handshakeTimeout: 3000 });
  await db.ready;
  const verified = await Promise.all([...found.values()].map((p) => verify(db, p, out)));
  await db.close();
  const ok = verified.filter(Boolean).length;
  if (ok === 0) throw new Error(`none of the ${found.size} address(es) announced on "${topic}" verified`);
  out(`${ok} of ${found.size} verified`);
  return 0;
}

/** Dials one address once; true when the signed handshake succeeded. Prints the outcome with its reason. */
function verify(db: ToolDb, p: { host: string; port: number }, out: Out): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false, `no answer within ${VERIFY_TIMEOUT_MS / 1000} s`), VERIFY_TIMEOUT_MS);
    const done = (ok: boolean, line: string) => {
      clearTimeout(timer);
      db.off("peer-connect", onConnect);
      db.off("dial-failed", onFailed);
      out(`${dialKey(p.host, p.port)}: ${line}`);
      resolve(ok);
    };
    const onConnect = (i: { host?: string; port?: number; peerId: string; isServer: boolean }) =>
      i.host === p.host && i.port === p.port && done(true, `verified ToolDb ${i.isServer ? "server" : "node"} ${i.peerId}`);
    const onFailed = (e: { host: string; port: number; reason: string }) =>
      e.host === p.host && e.port === p.port && done(false, `refused: ${e.reason || "the connection failed without a reason"}`);
    db.on("peer-connect", onConnect);
    db.on("dial-failed", onFailed);
    try {
      db.network.connectTo(p.host, p.port, { maxRetries: 0 });
    } catch (err) {
      done(false, `cannot dial: ${errorText(err)}`);
    }
  });
}
