import { Backoff } from "../base/backoff.js";
import { LruMap } from "../base/bounded-set.js";
import { groupBy } from "../base/group-by.js";
import { dialKey } from "../network/dial-target.js";
import { addressSite } from "../limits/address-range.js";
import type { PeerAddress } from "../discovery/peer-table.js";

/**
 * How far a candidate address is trusted before its handshake; lower tiers
 * are dialed first. Anyone can announce on a DHT topic or sign a record
 * naming any address, so only a verified link lifts an address to the top.
 */
export const Tier = {
  /** This node had a verified link to it (this run, or the peer cache of an earlier one), or the operator listed it. */
  Verified: 0,
  /** Listed by a server whose identity was proven in this session. */
  ProvenGossip: 1,
  /** Listed by a server that did not prove its identity (a tool-db 2.6.6 node). */
  Gossip: 2,
  /** Announced on a DHT or found by another mechanism: a stranger. */
  Found: 3,
} as const;
export type Tier = (typeof Tier)[keyof typeof Tier];

export interface Candidate extends PeerAddress {
  readonly key: string;
  tier: Tier;
  /** The node's address (public key), when a record or a link told us. */
  address: string | undefined;
  /** Not dialed before this time (ms, `now`: the node's monotonic clock); Infinity: never (our own address seen from outside). */
  until: number;
  /** Grows the penalty per failure; reset by a verified link. */
  backoff: Backoff | undefined;
  /** Grows the penalty per drop as unresponsive (close code 4012); a verified link does not reset it (the server handshakes, then stays silent), a good spell on one forgives one drop. */
  silence: Backoff | undefined;
  /** Arrival order: among equals of a full pool, the oldest goes first. */
  readonly seq: number;
  /** The operator listed it (bootstrap list): a client keeps its link to it and never rests it as a stranger (client-rotation.ts). */
  listed: boolean;
  /** Rotated out (client-rotation.ts): before this time (ms, `now`) dialed only when no other candidate can be (`pick`). */
  restUntil: number;
}

export interface CandidatePoolOptions {
  /** Addresses kept at most; past it the least trusted, penalised, oldest go first. */
  capacity: number;
  /** First penalty of a failed address; doubles per failure up to maxPenaltyMs. */
  penaltyMs: number;
  maxPenaltyMs: number;
  random: () => number;
  /** Monotonic time (ms, `db.monotonic()`): the penalties' ends wake the peering's timer. */
  now: () => number;
}

/**
 * The server addresses a node may dial, from every source (DHT, other
 * mechanisms, gossip, the peer cache), each with its tier and its penalty.
 * `pick` returns the most trusted one that is not penalised, at random among
 * equals (by network, then address): a flood of announces then neither goes
 * first nor in a predictable order nor outweighs the few networks it comes
 * from, and servers that pick their neighbours this way form a random graph.
 */
export class CandidatePool {
  private readonly entries = new Map<string, Candidate>();
  /**
   * Penalties of addresses evicted from a full pool (about 2 × capacity):
   * the DHT reports them again, and without this they came back untried.
   * An outside check with 8,000 bogus addresses saw 300 dials a second,
   * each address redialed at once instead of after its growing penalty.
   */
  private readonly evictedPenalties: LruMap<string, { backoff: Backoff; until: number }>;
  private seq = 0;

  constructor(private readonly opts: CandidatePoolOptions) {
    this.evictedPenalties = new LruMap(Math.max(1, opts.capacity));
  }

  get size(): number {
    return this.entries.size;
  }

  get(host: string, port: number): Candidate | undefined {
    return this.entries.get(dialKey(host, port));
  }

  list(): Candidate[] {
    return [...this.entries.values()];
  }

  /** Adds an address, or raises the tier of a known one (`listed`: the operator listed it). Returns whether it is (now) known. */
  offer(peer: PeerAddress, tier: Tier, address?: string, listed = false): boolean {
    const key = dialKey(peer.host, peer.port);
    const known = this.entries.get(key);
    if (known) {
      if (listed) known.listed = true;
      if (tier < known.tier) known.tier = tier;
      if (address !== undefined && tier <= known.tier) known.address = address;
      return true;
    }
    // Taken before making room: the eviction's own entry could turn the memory over and drop it.
    const past = this.evictedPenalties.get(key);
    if (this.entries.size >= this.opts.capacity && !this.evictFor(tier)) return false;
    if (past) this.evictedPenalties.delete(key);
    this.entries.set(key, { host: peer.host, port: peer.port, key, tier, address, until: past?.until ?? 0, backoff: past?.backoff, silence: undefined, seq: this.seq++, listed, restUntil: 0 });
    return true;
  }

  /**
   * A candidate that is not penalised and passes `usable`: of the most
   * trusted tier, and among those the fewest failures (an address whose
   * penalty ended comes after every untried one). Among equals the choice is
   * random by network, then by address, then by port: an attacker's announces
   * all carry addresses it holds (a DHT stores the announcer's own IP), so
   * thousands of them from a few networks weigh as a few candidates, not as
   * thousands. An address resting after a rotation (`rest`) is picked only
   * with `rested`.
   */
  pick(usable: (c: Candidate) => boolean, rested = false): Candidate | undefined {
    const now = this.opts.now();
    let best: Candidate[] = [];
    let bestRank = Infinity;
    for (const c of this.entries.values()) {
      if (c.until > now || (!rested && c.restUntil > now)) continue;
      const r = rank(c);
      if (r > bestRank || !usable(c)) continue;
      if (r < bestRank) {
        bestRank = r;
        best = [];
      }
      best.push(c);
    }
    return this.chooseFairly(best);
  }

  /**
   * A candidate that is not penalised and passes `usable`, of the most
   * trusted tier that has one (no further than `maxTier`), at random among
   * all of that tier (by network, then address, then port) whatever their
   * failures: the mesh's rotation (mesh-rotation.ts) wants a server it
   * trusts most, but not always the same ones. A review found that picking
   * across tiers let a linked server's list of thousands of its own
   * addresses win nine rotations in ten.
   */
  pickAmong(usable: (c: Candidate) => boolean, maxTier: Tier): Candidate | undefined {
    const now = this.opts.now();
    let best: Candidate[] = [];
    let bestTier: number = maxTier + 1;
    for (const c of this.entries.values()) {
      if (c.until > now || c.restUntil > now || c.tier > Math.min(maxTier, bestTier) || !usable(c)) continue;
      if (c.tier < bestTier) [best, bestTier] = [[], c.tier];
      best.push(c);
    }
    return this.chooseFairly(best);
  }

  private chooseFairly(candidates: Candidate[]): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const byNetwork = groupBy(candidates, (c) => networkOf(c.host));
    const network = this.choose([...byNetwork.values()]);
    const byHost = groupBy(network, (c) => c.host);
    return this.choose(this.choose([...byHost.values()]));
  }

  private choose<T>(items: T[]): T {
    return items[Math.min(items.length - 1, Math.floor(this.opts.random() * items.length))]!;
  }

  /** The address failed: not dialed again for a growing delay. Returns the delay. */
  penalise(host: string, port: number): number {
    const key = dialKey(host, port);
    const c = this.entries.get(key);
    if (!c) {
      // Pushed out while its dial was in flight: the failure still counts when it comes back.
      const past = this.evictedPenalties.get(key);
      if (!past) return 0;
      const delay = past.backoff.next();
      past.until = this.opts.now() + delay;
      return delay;
    }
    c.backoff ??= new Backoff({ initial: this.opts.penaltyMs, max: this.opts.maxPenaltyMs, random: this.opts.random });
    const delay = c.backoff.next();
    c.until = this.opts.now() + delay;
    return delay;
  }

  /**
   * This node dropped a verified link to the address for leaving its
   * requests unanswered: not dialed for a growing delay, and after every
   * other candidate of its tier. Returns the delay.
   */
  penaliseUnresponsive(host: string, port: number): number {
    const c = this.entries.get(dialKey(host, port));
    if (!c) return this.penalise(host, port);
    c.silence ??= new Backoff({ initial: this.opts.penaltyMs, max: this.opts.maxPenaltyMs, random: this.opts.random });
    const delay = c.silence.next();
    c.until = this.opts.now() + delay;
    return delay;
  }

  /** A link to the address served a good spell after a drop as unresponsive: one drop forgiven (rank and next wait). */
  forgiveUnresponsive(host: string, port: number): void {
    const c = this.entries.get(dialKey(host, port));
    if (!c?.silence) return;
    c.silence.forgive();
    if (c.silence.attempts === 0) c.silence = undefined;
  }

  /** Never dial this address (it is this node's own). */
  exclude(host: string, port: number): void {
    const c = this.entries.get(dialKey(host, port));
    if (c) c.until = Infinity;
  }

  /**
   * A link to the address was rotated out for delivering nothing this node
   * asked for (client-rotation.ts): for `ms` dialed only when no other
   * candidate can be (a rest, not a penalty: the candidate it made room for
   * may not answer, and a client with its only server resting went without
   * a link for the whole rest), and a stranger again, since having linked
   * once says nothing about what it serves (an address the operator listed
   * keeps its tier).
   */
  rest(host: string, port: number, ms: number): void {
    const c = this.entries.get(dialKey(host, port));
    if (!c) return;
    c.restUntil = this.opts.now() + ms;
    if (!c.listed) c.tier = Tier.Found;
  }

  /** A verified link was made to this address. */
  verified(host: string, port: number, address: string): void {
    this.evictedPenalties.delete(dialKey(host, port));
    this.offer({ host, port }, Tier.Verified, address);
    const c = this.entries.get(dialKey(host, port))!;
    c.until = 0;
    c.backoff?.reset();
  }

  /** When the earliest penalty that is not forever ends, if any is running. */
  nextRelease(): number | undefined {
    const now = this.opts.now();
    let next: number | undefined;
    for (const c of this.entries.values()) if (c.until > now && c.until !== Infinity && (next === undefined || c.until < next)) next = c.until;
    return next;
  }

  clear(): void {
    this.entries.clear();
    this.evictedPenalties.clear();
  }

  /** Makes room for a candidate of `tier`: drops the least trusted, penalised first, then the oldest. */
  private evictFor(tier: Tier): boolean {
    const now = this.opts.now();
    let victim: Candidate | undefined;
    for (const c of this.entries.values()) {
      if (c.tier < tier || c.until === Infinity) continue;
      if (!victim || worse(c, victim, now)) victim = c;
    }
    if (!victim) return false;
    this.entries.delete(victim.key);
    if (victim.backoff) this.evictedPenalties.set(victim.key, { backoff: victim.backoff, until: victim.until });
    return true;
  }
}

/** Lower is dialed first: the tier, then drops as unresponsive, then failures since the last verified link. */
function rank(c: Candidate): number {
  return c.tier * 1_000_000 + (c.silence?.attempts ?? 0) * 1000 + (c.backoff?.attempts ?? 0);
}

/**
 * An IP's /24 or, for IPv6, its /48 (a site: a /64 each costs an attacker
 * nothing, and a review saw 200 addresses of one /64 weigh as 200 networks),
 * else the host itself: one operator's addresses tend to share it.
 */
function networkOf(host: string): string {
  return addressSite(host) ?? host;
}

/** Whether `a` is a better eviction victim than `b`. */
function worse(a: Candidate, b: Candidate, now: number): boolean {
  if (a.tier !== b.tier) return a.tier > b.tier;
  const [pa, pb] = [a.until > now, b.until > now];
  if (pa !== pb) return pa;
  return a.seq < b.seq;
}
