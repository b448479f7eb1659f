import { recordUrl } from "../limits/peer-url.js";
import type { ToolDb } from "../node/tooldb.js";
import { dialKey } from "../network/dial-target.js";
import type { StatusHistory, StatusSample } from "../metrics/status-history.js";

/** One server as this server sees it, for the status page. */
export interface ServerStatus {
  /** Node address when verified, else the dialed host:port. */
  id: string;
  url?: string;
  /** Where it was learned: dht (announced on the topic), gossip (a verified record from a peer), link (linked to us). */
  sources: string[];
  /** linked, connecting, waiting, parked, failed, known (gossip only), found (DHT only). */
  state: string;
}

export interface NodeStatus {
  topic: string;
  self: { address: string; url?: string };
  clients: number;
  servers: ServerStatus[];
  /** Addresses found on the DHT alone (never dialed, linked or gossiped) left out of `servers`: only the newest MAX_FOUND_LISTED are listed. */
  foundNotListed: number;
  /** The server's last minutes, newer than the `since` the page asked with (see StatusHistory). */
  history: StatusSample[];
}

/**
 * DHT-only addresses listed at most (the newest): any linked peer may call
 * `status`, and under an announce flood the found set holds thousands of
 * strangers' addresses (an outside check made each answer a megabyte).
 */
export const MAX_FOUND_LISTED = 100;

/** What the status page shows, answered by the `status` server function (`since`: the newest sample the page has). */
export function nodeStatus(db: ToolDb, dhtFound: Pick<ReadonlySet<string>, "has"> & Iterable<string>, history?: StatusHistory, since?: unknown): NodeStatus {
  const servers = new Map<string, ServerStatus>();
  const entry = (id: string) => {
    let s = servers.get(id);
    if (!s) servers.set(id, (s = { id, sources: [], state: "known" }));
    return s;
  };
  const addSource = (s: ServerStatus, source: string) => s.sources.includes(source) || s.sources.push(source);
  const self = db.nodeAddress();
  for (const record of db.knownServers()) {
    if (record.address === self) continue;
    const s = entry(record.address);
    s.url = recordUrl(record);
    addSource(s, "gossip");
  }
  for (const target of db.network.dialTargets()) {
    const key = dialKey(target.host, target.port);
    const s = entry(target.address ?? key);
    s.url ??= `ws://${key}`;
    s.state = target.state;
    addSource(s, dhtFound.has(key) ? "dht" : "dialed");
  }
  for (const session of db.network.peers) {
    if (!session.isServer) continue;
    const s = entry(session.address);
    s.url ??= recordUrl(session.record);
    s.state = "linked";
    addSource(s, "link");
  }
  const dialed = new Set(db.network.dialTargets().map((t) => dialKey(t.host, t.port)));
  const foundOnly: string[] = [];
  for (const key of dhtFound) if (!dialed.has(key) && !servers.has(key)) foundOnly.push(key);
  for (const key of foundOnly.slice(-MAX_FOUND_LISTED)) {
    const s = entry(key);
    s.url ??= `ws://${key}`;
    s.state = s.state === "known" ? "found" : s.state;
    addSource(s, "dht");
  }
  const own = db.knownServers().find((r) => r.address === self);
  return {
    topic: db.topic,
    self: { address: self, url: own ? recordUrl(own) : undefined },
    clients: db.network.peers.filter((p) => !p.isServer).length,
    servers: [...servers.values()],
    foundNotListed: Math.max(0, foundOnly.length - MAX_FOUND_LISTED),
    history: history?.since(typeof since === "number" ? since : undefined) ?? [],
  };
}
