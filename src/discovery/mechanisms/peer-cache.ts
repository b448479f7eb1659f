import { createLogger } from "../../base/logger.js";
import { errorText } from "../../base/errors.js";
import type { ToolDbStorageAdapter } from "../../stores/storage-adapter.js";
import { dialKey } from "../../network/dial-target.js";
import type { PeerAddress } from "../peer-table.js";
import type { DiscoveryMechanism, MechanismSink } from "./mechanism.js";

const log = createLogger("discovery:peer-cache");
const CACHE_KEY = "peer-cache";

export interface CachedPeer extends PeerAddress {
  /** The server's verified node address (public key). */
  address: string;
  lastSeen: number;
  /** Failed dials since the last verified link. */
  failures: number;
}

export interface PeerCacheOptions {
  /** Failed dials after which an entry is evicted. Default 3. */
  maxFailures?: number;
  /** Entries kept at most (least recently seen dropped first). Default 64. */
  capacity?: number;
  now?: () => number;
}

/**
 * Servers this node completed a verified handshake with, kept in a store of
 * the node (so they survive a restart) and offered first when it starts,
 * most recently seen first. An entry is evicted after `maxFailures` failed
 * dials without a verified link in between.
 */
export class PeerCache implements DiscoveryMechanism {
  readonly name = "peer-cache";
  private readonly entries = new Map<string, CachedPeer>();
  private sink: MechanismSink | undefined;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private saving: Promise<void> = Promise.resolve();
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly store: ToolDbStorageAdapter,
    private readonly options: PeerCacheOptions = {},
  ) {}

  private get maxFailures(): number {
    return this.options.maxFailures ?? 3;
  }

  /** The cached servers, most recently seen first. */
  list(): CachedPeer[] {
    return [...this.entries.values()].sort((a, b) => b.lastSeen - a.lastSeen);
  }

  load(): Promise<void> {
    this.loaded ??= (async () => {
      await this.store.ready;
      const raw = await this.store.get(CACHE_KEY).catch((err) => log("cannot read: %s", errorText(err)));
      if (!raw) return;
      try {
        const parsed: unknown = JSON.parse(raw);
        if (!Array.isArray(parsed)) return;
        for (const e of parsed as CachedPeer[]) {
          if (typeof e?.host === "string" && Number.isInteger(e.port) && typeof e.address === "string") {
            this.entries.set(dialKey(e.host, e.port), { host: e.host, port: e.port, address: e.address, lastSeen: Number(e.lastSeen) || 0, failures: Number(e.failures) || 0 });
          }
        }
      } catch (err) {
        log("ignoring a damaged cache: %s", errorText(err));
      }
    })();
    return this.loaded;
  }

  async start(sink: MechanismSink): Promise<void> {
    await this.load();
    if (this.stopped) return;
    this.sink = sink;
    for (const peer of this.list()) sink.found({ host: peer.host, port: peer.port });
    sink.roundDone();
  }

  /** A verified handshake with a server dialed at host:port. */
  remember(peer: PeerAddress, address: string): void {
    if (this.stopped) return;
    const key = dialKey(peer.host, peer.port);
    this.entries.delete(key);
    this.entries.set(key, { host: peer.host, port: peer.port, address, lastSeen: this.now(), failures: 0 });
    const capacity = this.options.capacity ?? 64;
    for (const old of this.list().slice(capacity)) this.entries.delete(dialKey(old.host, old.port));
    this.save();
  }

  /** A dial of host:port failed; evicts the entry after maxFailures. */
  failed(peer: PeerAddress): void {
    if (this.stopped) return;
    const key = dialKey(peer.host, peer.port);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.failures++;
    if (entry.failures >= this.maxFailures) {
      this.entries.delete(key);
      log("evicted %s after %d failed dials", key, entry.failures);
    }
    this.save();
  }

  forget(peer: PeerAddress): void {
    const entry = this.entries.get(dialKey(peer.host, peer.port));
    if (entry && !this.stopped) this.sink?.found({ host: entry.host, port: entry.port });
  }

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  private save(): void {
    const snapshot = JSON.stringify(this.list());
    this.saving = this.saving
      .then(() => this.store.put(CACHE_KEY, snapshot))
      .catch((err) => log("cannot save: %s", errorText(err)));
  }

  /** Idempotent (every call resolves once the store is closed): writes pending changes and closes the store. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    await this.saving;
    await this.store.close().catch((err) => log("close failed: %s", errorText(err)));
  }
}
