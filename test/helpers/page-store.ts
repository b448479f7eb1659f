import type { Page } from "playwright-core";
import { ToolDbError, type ErrorCode } from "../../src/base/errors.js";
import { type RangeOptions, type StoreEntry, ToolDbStorageAdapter } from "../../src/stores/storage-adapter.js";

type Outcome = { ok: true; value: unknown } | { ok: false; code?: ErrorCode; message: string };

let nextId = 0;

interface PendingCall {
  op: string;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * A store whose every operation runs on an IndexedDbStore inside a Chromium
 * page, so the shared storage compliance suite (node:test, in Node) tests the
 * real store in the real browser. Errors come back with their ToolDbError code.
 */
export class PageStore extends ToolDbStorageAdapter {
  private readonly id = ++nextId;
  private readonly created: Promise<unknown>;

  constructor(
    private readonly page: Page,
    storageName: string,
  ) {
    super(undefined, storageName);
    this.created = page.evaluate(
      ([id, name]) => {
        const w = window as unknown as { tooldb: any; pageStores?: Map<number, any> };
        w.pageStores ??= new Map();
        w.pageStores.set(id, new w.tooldb.IndexedDbStore(undefined, name));
      },
      [this.id, storageName] as const,
    );
    this.forwardContract();
  }

  override get ready(): Promise<void> {
    return this.call("ready") as Promise<void>;
  }

  private forwardContract(): void {
    // Every public method of the contract (put, get, query, close and any a
    // later contract adds) runs on the page's store, closed state included.
    for (const name of Object.getOwnPropertyNames(ToolDbStorageAdapter.prototype)) {
      const descriptor = Object.getOwnPropertyDescriptor(ToolDbStorageAdapter.prototype, name)!;
      if (name === "constructor" || name.startsWith("_") || typeof descriptor.value !== "function") continue;
      const value =
        name === "range"
          ? (options?: RangeOptions) => this.rangeOnPage(options)
          : name === "rangePages" || name === "keyPages"
            ? (options?: RangeOptions) => this.pagesOnPage(name, options)
            : (...args: unknown[]) => this.call(name, ...args);
      Object.defineProperty(this, name, { value });
    }
  }

  /** A range scan read to the end in the page (a page cannot hand out an iterator), then streamed here. */
  private async *rangeOnPage(options: RangeOptions = {}): AsyncGenerator<StoreEntry> {
    yield* (await this.call("rangeAll", options)) as StoreEntry[];
  }

  /** `rangePages` or `keyPages`, page by page as the page's store yields them. */
  private async *pagesOnPage(method: "rangePages" | "keyPages", options: RangeOptions = {}): AsyncGenerator<readonly unknown[]> {
    yield* (await this.call("pagesAll", method, options)) as unknown[][];
  }

  /**
   * Runs `op` on the page's store. Calls made in one turn go to the page in
   * one evaluation and start there in the order made, without waiting on
   * each other (as calls made in one turn in Node do): one evaluation a call
   * made the suite's bursts of thousands of operations take most of the
   * browser file's time.
   */
  private call(op: string, ...args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.batch.push({ op, args, resolve, reject });
      if (this.batch.length === 1) void this.created.then(() => this.sendBatch());
    });
  }

  private readonly batch: PendingCall[] = [];

  /** Sends the calls made so far in one evaluation (never waiting on an earlier one: a call may wait on a later one). */
  private async sendBatch(): Promise<void> {
    const calls = this.batch.splice(0);
    let outcomes: Outcome[];
    try {
      outcomes = await this.page.evaluate(
        async ([id, ops]) => {
          const store = (window as unknown as { pageStores: Map<number, any> }).pageStores.get(id);
          const rangeAll = async (options: unknown) => {
            const out: unknown[] = [];
            for await (const entry of store.range(options)) out.push(entry);
            return out;
          };
          const pagesAll = async (method: string, options: unknown) => {
            const out: unknown[] = [];
            for await (const page of store[method](options)) out.push([...page]);
            return out;
          };
          const run = async (op: string, args: unknown[]) => {
            try {
              const value =
                op === "ready"
                  ? await store.ready
                  : op === "rangeAll"
                    ? await rangeAll(args[0])
                    : op === "pagesAll"
                      ? await pagesAll(args[0] as string, args[1])
                      : await store[op](...args.filter((a: unknown) => a !== undefined));
              return { ok: true as const, value };
            } catch (err) {
              const e = err as { code?: ErrorCode; message?: string };
              return { ok: false as const, code: e.code, message: String(e.message ?? err) };
            }
          };
          // Each started before the next, as issued; then all awaited.
          return Promise.all(ops.map(([op, args]) => run(op, args)));
        },
        [this.id, calls.map((c) => [c.op, c.args] as [string, unknown[]])] as const,
      );
    } catch (err) {
      for (const c of calls) c.reject(err);
      return;
    }
    calls.forEach((c, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) c.resolve(outcome.value);
      else c.reject(outcome.code ? new ToolDbError(outcome.code, outcome.message) : new Error(outcome.message));
    });
  }

  // Never called: the public methods are forwarded to the page before these could run.
  protected _put(): Promise<void> {
    throw new Error("PageStore forwards put");
  }
  protected _get(): Promise<string | undefined> {
    throw new Error("PageStore forwards get");
  }
  protected _query(): Promise<string[]> {
    throw new Error("PageStore forwards query");
  }
  protected _del(): Promise<void> {
    throw new Error("PageStore forwards del");
  }
  protected _range(): AsyncIterable<StoreEntry> {
    throw new Error("PageStore forwards range");
  }
  protected _close(): Promise<void> {
    throw new Error("PageStore forwards close");
  }
}
