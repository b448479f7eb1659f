import { ErrorCode, errorText } from "../base/errors.js";
import type { RefusalEvent } from "../network/network-host.js";
import type { PeerSession } from "../network/peer-session.js";
import type { PeerRecord } from "../records/messages.js";
import type { LearnOutcome } from "./server-directory.js";

/** Where a server list came from: the handshake's pong (once per link) or a pong after it. */
export type ServerListSource = "handshake" | "pong";

export interface ServerListLearnerDeps {
  /** Verifies and keeps the good records (ServerDirectory.learn). */
  learn(records: PeerRecord[], from: PeerSession): Promise<LearnOutcome>;
  /** Counts a forged list against its sender (NetworkAdapter.strikePeer). */
  strike(from: PeerSession, code: ErrorCode, reason: string): void;
  refused(event: RefusalEvent): void;
  /** New servers learned (the node's "servers" event). */
  learned(records: PeerRecord[], from: PeerSession): void;
  log(format: string, ...args: unknown[]): void;
  /** The node's clock (injectable). */
  now(): number;
  /** A session's lists after the handshake are learned at most once per this many ms. */
  intervalMs: number;
}

interface SessionGate {
  busy: boolean;
  /** When the last list after the handshake was taken; -Infinity before the first. */
  lastAt: number;
}

/**
 * Admits the server lists of linked sessions to the directory: one list at
 * a time per session, and after the handshake one per `intervalMs`; extra
 * lists are dropped, not queued (each costs up to a signature check per
 * record, and a pong is not counted by the intake's outstanding caps).
 * A list with a forged record strikes its sender.
 */
export class ServerListLearner {
  private readonly gates = new WeakMap<PeerSession, SessionGate>();
  private dropped = 0;
  private checked = 0;

  constructor(private readonly deps: ServerListLearnerDeps) {}

  /** Lists dropped by the gate so far (tests, metrics). */
  get droppedLists(): number {
    return this.dropped;
  }

  /** Signatures of gossiped server records verified so far (tests, metrics). */
  get checks(): number {
    return this.checked;
  }

  offer(records: PeerRecord[], from: PeerSession, source: ServerListSource): void {
    let gate = this.gates.get(from);
    if (!gate) this.gates.set(from, (gate = { busy: false, lastAt: -Infinity }));
    const now = this.deps.now();
    if (records.length === 0 || gate.busy || (source === "pong" && now - gate.lastAt < this.deps.intervalMs)) {
      if (records.length > 0) this.dropped++;
      return;
    }
    gate.busy = true;
    if (source === "pong") gate.lastAt = now;
    void this.take(records, from).finally(() => (gate.busy = false));
  }

  private async take(records: PeerRecord[], from: PeerSession): Promise<void> {
    try {
      const { learned, problems, forged, checked } = await this.deps.learn(records, from);
      this.checked += checked;
      for (const problem of problems) {
        this.deps.refused({ code: ErrorCode.BAD_PEER, reason: `gossiped server record refused (${problem})`, peer: from.clientId });
      }
      if (forged) this.deps.strike(from, ErrorCode.BAD_PEER, `forged server record in a server list (${forged})`);
      if (learned.length > 0) this.deps.learned(learned, from);
    } catch (err) {
      // Never an unhandled rejection (a throwing "servers" listener is reported by the emitter itself, see typed-emitter.ts).
      this.deps.log("server list from %s not learned: %s", from.clientId, errorText(err));
    }
  }
}
