import DHT from "bittorrent-dht";

/**
 * Resolves when a bittorrent-dht node emits `event` ('listening' once bound,
 * 'ready' once bootstrapped); rejects on 'error' or after `timeout` ms.
 * Never leaves a listener or timer behind.
 */
export function dhtEvent(dht: DHT, event: "ready" | "listening", timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`DHT node not ${event} within ${timeout} ms`)), timeout);
    const onEvent = () => finish();
    const onError = (err: Error) => finish(err);
    function finish(err?: Error) {
      clearTimeout(timer);
      dht.off(event, onEvent);
      dht.off("error", onError);
      if (err) reject(err);
      else resolve();
    }
    dht.once(event, onEvent);
    dht.once("error", onError);
  });
}

export function destroyDht(dht: DHT): Promise<void> {
  return new Promise((resolve) => dht.destroy(() => resolve()));
}

/** A plain bittorrent-dht node bound on `host` (an attacker's, say) in a private DHT, once ready; errors ignored. */
export async function startDhtAt(bootstrap: string[], host: string, timeout = 500): Promise<DHT> {
  const dht = new DHT({ bootstrap, timeout });
  dht.on("error", () => undefined);
  const ready = dhtEvent(dht, "ready", 5000);
  dht.listen(0, host);
  try {
    await ready;
  } catch (err) {
    await destroyDht(dht);
    throw err;
  }
  return dht;
}
