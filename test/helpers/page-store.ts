import type { Page } from "playwright-core";
import { ToolDbError, type ErrorCode } from "../../src/base/errors.js";
import { type RangeOptions, type StoreEntry, ToolDbStorageAdapter } from "../../src/stores/storage-adapter.js";

type Outcome = { ok: true; value: unknown } | { ok: false; code?: ErrorCode; message: string };

let nextId = 0;

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

  private async call(op: string, ...args: unknown[]): Promise<unknown> {
    await this.created;
    const outcome: Outcome = await this.page.evaluate(
      async ([id, op, args]) => {
        const store = (window as unknown as { pageStores: Map<number, any> }).pageStores.get(id);
        try {
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
      },
      [this.id, op, args] as const,
    );
    if (outcome.ok) return outcome.value;
    throw outcome.code ? new ToolDbError(outcome.code, outcome.message) : new Error(outcome.message);
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
