/**
 * Two servers on one manual clock for tests of periodic refreshes
 * (run-schedule.ts): a refresh comes only when the test moves the clock (the
 * heartbeat is pushed out of the way), and the frames of a link can be counted.
 */
import assert from "node:assert/strict";
import type { ToolDb, ToolDbOptions } from "../../src/index.js";
import type { PeerSession } from "../../src/network/peer-session.js";
import { linkServers, startServer, waitUntil } from "./nodes.js";
import { ManualClock } from "./manual-clock.js";

export const REFRESH_MS = 60_000;
/** The latest a refresh comes after a complete run (+20 %). */
export const LATEST = REFRESH_MS * 1.2;

/**
 * Two servers on one manual clock, `dialer` linked to `listener` (the dialer runs), their first run over.
 * `beforeLink`: what the listener holds before they link (the dialer's first run is then a store copy).
 */
export async function linkedPair(
  nodes: ToolDb[],
  opts: Partial<ToolDbOptions> = {},
  dialerOpts: Partial<ToolDbOptions> = {},
  listenerOpts: Partial<ToolDbOptions> = {},
  beforeLink?: (listener: ToolDb, clock: ManualClock) => Promise<void>,
): Promise<{ clock: ManualClock; dialer: ToolDb; listener: ToolDb }> {
  const clock = new ManualClock(Date.now());
  // random 0.5: a refresh exactly REFRESH_MS after a run (the jitter's middle).
  const common: Partial<ToolDbOptions> = { clock, random: () => 0.5, heartbeatInterval: 3_600_000, topic: "sync-refresh", ...opts };
  const listener = await startServer({ ...common, ...listenerOpts });
  const dialer = await startServer({ ...common, ...dialerOpts });
  nodes.push(listener, dialer);
  await beforeLink?.(listener, clock);
  await linkServers(dialer, listener);
  await waitUntil(() => dialer.syncProgress.completed >= 1 && dialer.syncProgress.running === 0, 10_000, "the first run");
  assert.equal(dialer.syncProgress.runs.incomplete, 0);
  return { clock, dialer, listener };
}

export const sessionTo = (db: ToolDb, peer: ToolDb): PeerSession => {
  const session = db.network.peers.find((p) => p.address === peer.nodeAddress());
  assert.ok(session, "the link");
  return session;
};

/** Counts the reconciliation frames (type sync*) and their characters sent on `session`. */
export function countSync(session: PeerSession): { frames: string[]; bytes: () => number } {
  const frames: string[] = [];
  let bytes = 0;
  const connection = session.connection;
  const send = connection.send.bind(connection);
  connection.send = (frame: string) => {
    const type = /"type":"(\w+)"/.exec(frame)?.[1] ?? "";
    if (type.startsWith("sync")) {
      frames.push(type);
      bytes += frame.length;
    }
    send(frame);
  };
  return { frames, bytes: () => bytes };
}

/** Moves the clock `ms` (a refresh by default) and waits for the dialer's run it brings. */
export function refresher(clock: ManualClock, dialer: ToolDb): (ms?: number) => Promise<void> {
  let runs = dialer.syncProgress.completed;
  return async (ms = LATEST) => {
    clock.advance(ms);
    await waitUntil(() => dialer.syncProgress.completed > runs && dialer.syncProgress.running === 0, 10_000, `refresh ${runs}`);
    runs = dialer.syncProgress.completed;
  };
}

/** A refresh of `dialer` by ranges: its checkpoints forgotten first (no change-feed shortcut); asserts the run was one. */
export function rangeRefresher(clock: ManualClock, dialer: ToolDb): (ms?: number) => Promise<void> {
  const refresh = refresher(clock, dialer);
  return async (ms = LATEST) => {
    await dialer.sync.range!.index.feed.forgetCheckpoints();
    const before = dialer.syncProgress.runs.range;
    await refresh(ms);
    assert.equal(dialer.syncProgress.runs.range, before + 1, "a complete range run");
  };
}

/** Counts the account records (`==<prefix>`) `from` sends `to` in record frames (fetch answers, copy pages). */
export function signUpsSent(from: ToolDb, to: ToolDb, prefix: string): () => number {
  let sent = 0;
  const connection = sessionTo(from, to).connection;
  const send = connection.send.bind(connection);
  const pattern = new RegExp(`"k":"==${prefix}`, "g");
  connection.send = (frame: string) => {
    if (frame.startsWith('{"type":"syncRecords"')) sent += frame.match(pattern)?.length ?? 0;
    send(frame);
  };
  return () => sent;
}
