/**
 * Frames a node writes to one socket during a turn of the event loop go out
 * in one write: the socket is corked at the first frame and uncorked once
 * the turn's I/O callbacks ran (setImmediate). A server relaying puts would
 * otherwise make a system call per frame and per subscriber, which on
 * loopback cost about as much as the rest of the relay; the delay is at most
 * what is left of the current turn.
 */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

const corked = new Set<Corkable>();
let scheduled = false;

export function corkForTurn(stream: Corkable): void {
  if (corked.has(stream)) return;
  corked.add(stream);
  stream.cork();
  if (!scheduled) {
    scheduled = true;
    setImmediate(uncorkAll);
  }
}

/** Lets the stream's frames go now, before the turn ends (a turn wrote enough to it). */
export function uncorkNow(stream: Corkable): void {
  if (corked.delete(stream)) stream.uncork();
}

function uncorkAll(): void {
  scheduled = false;
  const streams = [...corked];
  corked.clear();
  for (const stream of streams) stream.uncork();
}
