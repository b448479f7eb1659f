import type { ToolDb } from "../../src/index.js";

/** What `watchAskingBuckets` saw of a server's asking buckets for one peer. */
export interface AskingBucketWatch {
  /** Their capacity (scans) when the watch began: (store + slack) × scansPerItem. */
  capacity: number;
  /** Scans charged to them for the peer's requests. */
  charged: number;
  /** The most they were ever below that capacity (work not yet paid back by refill or credit). */
  peak: number;
  /** Records new here that earned the peer credit (NEW_RECORD_CREDIT each, once a key). */
  credited: number;
}

/**
 * Watches `server`'s asking buckets (the scans its answers to `peer`'s
 * reconciliation requests are charged to) from now on, by wrapping its
 * SyncGate's `charge` and `newRecords`.
 */
export function watchAskingBuckets(server: ToolDb, peer: ToolDb): AskingBucketWatch {
  const range = server.sync.range!;
  const gate = range.gate;
  const { scansPerItem, slack } = gate.budget.options;
  const out: AskingBucketWatch = { capacity: (range.index.size + slack) * scansPerItem, charged: 0, peak: 0, credited: 0 };
  const charge = gate.charge.bind(gate);
  gate.charge = (session, kind, amount) => {
    charge(session, kind, amount);
    if (kind !== "scans" || session.address !== peer.nodeAddress()) return;
    out.charged += amount;
    out.peak = Math.max(out.peak, out.capacity - gate.remaining(session, "scans"));
  };
  const newRecords = gate.newRecords.bind(gate);
  gate.newRecords = (session, keys) => {
    if (session.address === peer.nodeAddress()) out.credited += keys.length;
    newRecords(session, keys);
  };
  return out;
}
