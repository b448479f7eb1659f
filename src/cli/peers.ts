import { errorText } from "../base/errors.js";
import { groupBy, interleave } from "../base/group-by.js";
import { addressRange } from "../limits/address-range.js";
import { dhtNodeCount } from "../discovery/dht-watch.js";
import { Discovery } from "../discovery/discovery.js";
import { dialKey } from "../network/dial-target.js";
import { ToolDb } from "../platform/node.js";
import type { Out } from "./command.js";
import type { PeersOptions } from "./options.js";

/** How long one address gets to complete the signed handshake. */
const VERIFY_TIMEOUT_MS = 5000;
/**
 * Addresses printed and verified at most, taken in turn from each /24
 * network, and dials at once: strangers can flood a topic with thousands of
 * addresses from a few networks (an outside check heard 6,000), which must
 * neither hide the real server nor start thousands of dials.
 */
const MAX_LISTED = 100;
const MAX_VERIFIED = 256;
const VERIFIES_IN_FLIGHT = 32;
/** Keeps looking up at the fast interval for the whole wait (Discovery slows down once it has `want` peers). */
const WANT_ALL = 1_000_000;

/** `tooldb-dht peers` (flags and help in commands.ts) with its options, checked by peersOptions before this module loads. */
export async function peers({ topic, waitS, bootstrap }: PeersOptions, out: Out): Promise<number> {
  const discovery = new Discovery({ bootstrap, fastInterval: 1000, want: WANT_ALL });
  const found = new Map<string, { host: string; port: number }>();
  discovery.on("peer", (_id, p) => {
    const key = dialKey(p.host, p.port);
    if (found.has(key)) return;
    found.set(key, p);
    if (found.size <= MAX_LISTED) out(`DHT says: ${key}`);
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
  if (found.size > MAX_LISTED) out(`(${found.size - MAX_LISTED} more not printed)`);
  const chosen = acrossNetworks([...found.values()], MAX_VERIFIED);
  out(`${found.size} address(es) announced on "${topic}". Verifying ${chosen.length === found.size ? "each" : `${chosen.length}, taken in turn from each /24 network`}...`);
  const db = new ToolDb({ topic, handshakeTimeout: 3000 });
  await db.ready;
  let ok = 0;
  let next = 0;
  const worker = async () => {
    while (next < chosen.length) if (await verify(db, chosen[next++]!, out)) ok++;
  };
  await Promise.all(Array.from({ length: Math.min(VERIFIES_IN_FLIGHT, chosen.length) }, worker));
  await db.close();
  if (ok === 0) {
    const tried = chosen.length === found.size ? `${found.size} address(es) announced on "${topic}"` : `${chosen.length} address(es) tried of the ${found.size} announced on "${topic}"`;
    throw new Error(`none of the ${tried} verified`);
  }
  out(`${ok} of ${chosen.length} verified`);
  return 0;
}

type Address = { host: string; port: number };

/**
 * Up to `max` addresses, one from each /24 (or IPv6 /64) network in turn and, within a
 * network, one from each host in turn: a flood's thousands of ports on a
 * few hosts then weigh as those few hosts.
 */
function acrossNetworks(addresses: Address[], max: number): Address[] {
  const byNetwork = groupBy(addresses, (a) => addressRange(a.host) ?? a.host);
  const networks = [...byNetwork.values()].map((list) => interleave([...groupBy(list, (a) => a.host).values()]));
  return interleave(networks, max);
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
