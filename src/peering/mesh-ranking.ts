/**
 * Which server links a full server mesh closes first. Saying `isServer` in
 * the handshake, and proving a key, costs a stranger nothing: a fresh key
 * does it. So links are ranked by what this node saw of the peer itself,
 * and a newcomer with a better rank pushes out one with less:
 *  - Dialled: this node dialled the peer (an address it found on the topic,
 *    was given, or had verified before): the attacker did not choose it;
 *  - Exchanged: the peer sent a verified record that changed this store (in
 *    a reconciliation run, or a relayed put). A reconciliation run that ran
 *    to the end is only known to the side that ran it, which is the dialling
 *    side (ranked Dialled already); the other side sees one closing message
 *    an attacker sends at will, so it is not counted;
 *  - Declared: a proven server that showed nothing else;
 *  - links that did not even prove their key (tool-db 2.6.6) rank below all.
 * Every rank short of Dialled is cheap to reach for an attacker with its
 * own key, so incoming links are also counted per address range (/24,
 * /64): those of one range beyond `maxPerRange` go first, whatever they
 * showed, so one network cannot fill the mesh. Ties: the newest first.
 *
 * Dialled is weaker over Hyperswarm: its links are dialled to whoever a
 * topic lookup returns, and anyone can announce a topic as often as it
 * likes (outside check: 40 announcers that proved fresh keys as servers
 * held both real servers' 12 links, and the link between them, made later,
 * was pruned again and again). So such links hold at most `maxSwarmDialled`
 * places beyond which they go first too, and among links of equal evidence
 * they go before those dialled from other sources (a DHT, a bootstrap
 * list, a peer cache).
 */
import { addressRange } from "../limits/address-range.js";
import type { PeerSession } from "../network/peer-session.js";

export const MeshEvidence = {
  Unproven: 0,
  Declared: 1,
  Exchanged: 2,
  Dialled: 3,
} as const;
export type MeshEvidence = (typeof MeshEvidence)[keyof typeof MeshEvidence];

/**
 * Whether the peer proved in this session that it holds its record's key and
 * said it is a server (`PeerSession.provenServer`, from the handshake
 * challenge). Read loosely until every transport's handshake sets it.
 */
export function isProvenServer(session: PeerSession): boolean {
  return (session as { provenServer?: boolean }).provenServer === true;
}

export function meshEvidence(session: PeerSession): MeshEvidence {
  if (!isProvenServer(session)) return MeshEvidence.Unproven;
  if (session.outgoing) return MeshEvidence.Dialled;
  return session.sentNewRecord ? MeshEvidence.Exchanged : MeshEvidence.Declared;
}

/**
 * The range a link is counted in: its IP's /24 or /64; a link from an exempt
 * IP (the operator's own hosts, loopback by default) stands alone, as in the
 * connection gate; links without a remote IP share one range.
 */
export function meshRange(session: PeerSession, exemptIps: readonly string[]): string {
  const ip = session.host;
  if (ip === undefined) return "unknown";
  if (exemptIps.includes(ip)) return `link:${session.clientId}`;
  return addressRange(ip) ?? `ip:${ip}`;
}

interface Ranked {
  session: PeerSession;
  evidence: MeshEvidence;
  /** An incoming link of a range that has `maxPerRange` links worth more (or as much and older). */
  crowded: boolean;
}

/** Most worth keeping first: more evidence, then older. */
const keepFirst = (a: Ranked, b: Ranked) => b.evidence - a.evidence || a.session.openedAt - b.session.openedAt;

/**
 * `links` in the order a full mesh closes them: incoming links beyond
 * `maxPerRange` of their range first, then the least evidence, then the
 * newest. Work and memory are linear in the links (a server keeps a dozen).
 */
export function pruneOrder(links: readonly PeerSession[], maxPerRange: number, rangeOf: (s: PeerSession) => string, maxSwarmDialled = Infinity): PeerSession[] {
  const ranked: Ranked[] = links.map((session) => ({ session, evidence: meshEvidence(session), crowded: false }));
  const perRange = new Map<string, number>();
  let swarmLinks = 0;
  for (const r of [...ranked].sort(keepFirst)) {
    if (r.session.outgoing) {
      if (swarmDialled(r.session) && ++swarmLinks > maxSwarmDialled) r.crowded = true;
      continue;
    }
    const range = rangeOf(r.session);
    const kept = perRange.get(range) ?? 0;
    if (kept >= maxPerRange) r.crowded = true;
    else perRange.set(range, kept + 1);
  }
  return ranked
    .sort((a, b) => Number(b.crowded) - Number(a.crowded) || a.evidence - b.evidence || Number(swarmDialled(b.session)) - Number(swarmDialled(a.session)) || b.session.openedAt - a.session.openedAt)
    .map((r) => r.session);
}

/** A link this node dialled to a peer a Hyperswarm lookup returned (see the file's comment). */
function swarmDialled(session: PeerSession): boolean {
  return session.outgoing && session.connection.info.transport === "hyperswarm";
}
