/**
 * Keeps a few request/reply exchanges in flight, each next message built
 * once a slot is free: the peer answers one while we work on the reply to
 * another. Range reconciliation is rounds of messages, but the ranges of
 * different messages never overlap, so nothing needs them one at a time.
 */
export interface WindowOptions<M> {
  /** The next message to send, or undefined when there is none for now (more may come of replies still in flight). */
  next(): Promise<M | undefined>;
  /** Sends a message and handles its reply (a rejection ends the window). */
  exchange(message: M): Promise<void>;
  /** Exchanges in flight at most. */
  width: number;
  /** Messages sent at most, the first included. */
  maxMessages: number;
}

/**
 * Runs exchanges from `first` on until no message is left or `maxMessages`
 * were sent; resolves the number sent. After a failure no further message
 * is sent, and it rejects with the first failure once those in flight ended.
 */
export async function runWindow<M>(first: M, options: WindowOptions<M>): Promise<number> {
  const flying = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let sent = 0;
  const launch = (message: M) => {
    sent++;
    const exchanged: Promise<void> = options
      .exchange(message)
      .catch((error: unknown) => void (failure ??= { error }))
      .finally(() => flying.delete(exchanged));
    flying.add(exchanged);
  };
  launch(first);
  while (flying.size > 0) {
    await Promise.race(flying);
    while (!failure && flying.size < options.width && sent < options.maxMessages) {
      const message = await options.next().catch((error: unknown) => void (failure ??= { error }));
      if (message === undefined) break;
      launch(message);
    }
  }
  if (failure) throw failure.error;
  return sent;
}
