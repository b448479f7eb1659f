/**
 * Follows every put of a run across the servers: copies of it that arrive
 * in put frames (counted on the in-memory links), signature checks of it
 * (counted by the user adapter), hops and time of its first copy, when each
 * server stored it and whether a put frame (relay, tree) or anti-entropy
 * (server sync) brought it.
 */
import type { MemoryNetwork } from "./memory-network.js";
import type { SimNode } from "./mesh.js";
import type { VerifyCounter } from "./sim-node.js";

interface AtServer {
  copies: number;
  hops: number;
  storedAt: number;
  byRelay: boolean;
}

export interface PutTrace {
  hash: string;
  issuedAt: number;
  /** Servers alive when the put was issued (by index). */
  liveAtIssue: Set<number>;
  at: Map<number, AtServer>;
  /** First instant at which every live server held it; undefined while some live server lacks it. */
  completeAt: number | undefined;
}

export interface PutSummary {
  copiesMean: number;
  copiesMax: number;
  verifyMean: number;
  verifyMax: number;
  lastMs: number | undefined;
  /** Most hops any server's first copy took (client -> server counts as one). */
  maxHops: number;
  relayShare: number;
  completeMs: number | undefined;
}

export class PutTracker {
  readonly puts = new Map<string, PutTrace>();
  private readonly byNetwork = new Map<MemoryNetwork, SimNode>();

  constructor(
    private readonly now: () => number,
    private readonly verifications: VerifyCounter,
  ) {}

  watchServer(node: SimNode): void {
    this.byNetwork.set(node.db.network as unknown as MemoryNetwork, node);
    node.db.on("put", (message) => this.stored(node, message.data.h));
  }

  watchClient(node: SimNode, live: () => SimNode[]): void {
    // A client's own write fires "put" with no sender, before it is sent.
    node.db.on("put", (message, from) => {
      if (from === undefined) this.issued(message.data.h, live());
    });
  }

  issued(hash: string, live: SimNode[]): void {
    this.puts.set(hash, { hash, issuedAt: this.now(), liveAtIssue: new Set(live.map((s) => s.index)), at: new Map(), completeAt: undefined });
  }

  /** Every frame delivered on the fabric. */
  frame(to: MemoryNetwork, frame: string): void {
    // A frame's fields come in any order (PeerSession.send puts `to` first): cheap filter, then the parsed `type`.
    if (!frame.includes('"type":"put"') && !frame.includes('"type":"crdtPut"')) return;
    const node = this.byNetwork.get(to);
    if (!node) return;
    const m = JSON.parse(frame) as { type?: unknown; to?: unknown[]; r?: number; data?: { h?: string } };
    if (m.type !== "put" && m.type !== "crdtPut") return;
    const trace = m.data?.h ? this.puts.get(m.data.h) : undefined;
    if (!trace) return;
    const at = this.entry(trace, node.index);
    at.copies++;
    // A flooded frame's `to` lists the nodes it passed (a node may appear twice; at most the latest 16).
    if (at.copies === 1) at.hops = typeof m.r === "number" ? m.r + 1 : new Set(m.to ?? []).size;
  }

  private entry(trace: PutTrace, index: number): AtServer {
    let at = trace.at.get(index);
    if (!at) trace.at.set(index, (at = { copies: 0, hops: 0, storedAt: -1, byRelay: false }));
    return at;
  }

  private stored(node: SimNode, hash: string): void {
    const trace = this.puts.get(hash);
    if (!trace) return;
    const at = this.entry(trace, node.index);
    if (at.storedAt >= 0) return;
    at.storedAt = this.now();
    at.byRelay = at.copies > 0;
  }

  /** Marks the puts that every live server now holds. */
  checkComplete(live: SimNode[]): number {
    let incomplete = 0;
    for (const trace of this.puts.values()) {
      if (trace.completeAt !== undefined) continue;
      let last = trace.issuedAt;
      let all = true;
      for (const s of live) {
        const storedAt = trace.at.get(s.index)?.storedAt ?? -1;
        if (storedAt < 0) {
          all = false;
          break;
        }
        last = Math.max(last, storedAt);
      }
      // The instant the last of the servers live now got it (checked at intervals, known exactly).
      if (all) trace.completeAt = last;
      else incomplete++;
    }
    return incomplete;
  }

  /** Figures of one put over the servers alive both when it was issued and now. */
  summary(trace: PutTrace, servers: SimNode[]): PutSummary {
    const considered = servers.filter((s) => s.alive && trace.liveAtIssue.has(s.index));
    let copies = 0;
    let copiesMax = 0;
    let verify = 0;
    let verifyMax = 0;
    let relayed = 0;
    let last = -1;
    let maxHops = 0;
    let missing = false;
    for (const s of considered) {
      const at = trace.at.get(s.index);
      const c = at?.copies ?? 0;
      const v = this.verifications.of(s.db, trace.hash);
      copies += c;
      copiesMax = Math.max(copiesMax, c);
      verify += v;
      verifyMax = Math.max(verifyMax, v);
      if (at?.byRelay) {
        relayed++;
        maxHops = Math.max(maxHops, at.hops);
      }
      if (!at || at.storedAt < 0) missing = true;
      else last = Math.max(last, at.storedAt);
    }
    const n = Math.max(1, considered.length);
    return {
      copiesMean: copies / n,
      copiesMax,
      verifyMean: verify / n,
      verifyMax,
      lastMs: missing || last < 0 ? undefined : last - trace.issuedAt,
      maxHops,
      relayShare: relayed / n,
      completeMs: trace.completeAt === undefined ? undefined : trace.completeAt - trace.issuedAt,
    };
  }
}
