/**
 * When an outbox entry goes out on which link, as rules over its delivery
 * state (see OutboxEntry). A write is due on a link as soon as the link can
 * carry it: a link that just opened (or was proven) gets every entry it does
 * not carry yet, however often that entry was sent before. The re-send
 * backoff only paces re-sends while the entry waits on a live link that
 * stays silent. A write a server refuses (its answer, or the link it came on
 * dropped as refused) waits out a backoff of its own and never holds back
 * the entries behind it. A write that servers this client does not trust
 * confirmed (`met`) goes only to a server it trusts (outbox.ts).
 */
import { CloseCode } from "../network/connection.js";
import type { DeliveryLink, OutboxEntry } from "./outbox-index.js";

/** Re-sends on a live, silent link double their delay up to 64 × the retry interval. */
const MAX_RESEND_DOUBLINGS = 6;
/** A refused write waits up to 1024 × the retry interval between attempts. */
const MAX_REFUSAL_DOUBLINGS = 10;

/** Close codes by which a server says it dropped the link over what we sent (too large, malformed, too many refused). */
export function isRefusalClose(code: number): boolean {
  return code === CloseCode.TOO_LARGE || code === CloseCode.BAD_MESSAGE || code === CloseCode.TOO_MANY_STRIKES;
}

/** Why a drain runs: a link that just opened or was proven, or the periodic re-send. */
export type Pass = "new-link" | "resend";

export function isHeld(entry: OutboxEntry, now: number): boolean {
  return entry.heldUntil !== undefined && now < entry.heldUntil;
}

/** True while the entry waits for an answer on `link` (sent there, link open, not answered since). */
export function awaits(entry: OutboxEntry, link: DeliveryLink): boolean {
  return !link.connection.closed && (entry.sentOn?.includes(link) ?? false) && !(entry.confirmedBy?.has(link.address) ?? false);
}

/** `trusted`: the client trusts the link's server (server-trust.ts); a write `met` without such a server goes to those only. */
export function isDue(entry: OutboxEntry, link: DeliveryLink, pass: Pass, now: number, retryInterval: number, trusted = true): boolean {
  if ((entry.met && !trusted) || isHeld(entry, now) || entry.confirmedBy?.has(link.address)) return false;
  const onLink = entry.sentOn?.includes(link) ?? false;
  if (pass === "new-link") return !onLink;
  // A re-send pass: at once where the write waits on no live link, else paced by its tries.
  if (entry.sentAt === undefined || !(entry.sentOn ?? []).some((l) => awaits(entry, l))) return true;
  return now - entry.sentAt >= retryInterval * 2 ** Math.min(Math.max(entry.tries - 1, 0), MAX_RESEND_DOUBLINGS);
}

/** The entry went out on `links`; `fresh`: on a link that had not carried it (the re-send pace starts over). */
export function markSent(entry: OutboxEntry, links: DeliveryLink[], fresh: boolean, now: number): void {
  const live = (entry.sentOn ?? []).filter((l) => !l.connection.closed && !links.includes(l));
  entry.sentOn = [...live, ...links];
  entry.sentAt = now;
  entry.tries = fresh ? 1 : entry.tries + 1;
}

/**
 * The server behind `link` refused the write (that answers it there): it
 * waits out a backoff of its own before it goes out again. Where it still
 * waits for an answer, it goes on waiting (a drop of such a link is still
 * its doing); a suspect stays one until a server confirms it.
 */
export function hold(entry: OutboxEntry, link: DeliveryLink, now: number, retryInterval: number): void {
  entry.refusals++;
  entry.heldUntil = now + retryInterval * 2 ** Math.min(entry.refusals - 1, MAX_REFUSAL_DOUBLINGS);
  entry.sentOn = entry.sentOn?.filter((l) => l !== link);
}

/**
 * A link was dropped as refused while `unanswered` waited on it: the write to
 * blame when it is the only suspect (or the only entry) that was waiting;
 * otherwise none, and every waiting entry becomes a suspect, sent alone from
 * then on until a confirmation or another such drop tells.
 */
export function blame(unanswered: OutboxEntry[]): OutboxEntry | undefined {
  const suspects = unanswered.filter((e) => e.suspect);
  if (suspects.length === 1) return suspects[0];
  if (unanswered.length === 1) return unanswered[0];
  for (const entry of unanswered) entry.suspect = true;
  return undefined;
}
