/**
 * Signature checks on every core (Node): a few worker threads
 * (crypto/verify-worker.ts) verify ECDSA P-256 signatures synchronously with
 * OpenSSL, fed in packed batches (crypto/signature-batch.ts). The checks a
 * node asks for during one turn of the event loop go in batches of up to
 * MAX_BATCH, so a catch-up frame of a thousand records costs the main
 * thread a string concatenation per record and a message per batch,
 * instead of a libuv job, a key-object argument check and a callback per
 * record.
 *
 * Threads start once a turn asks for many checks (START_AT) and do not keep
 * the process alive while idle. Each holds about THREAD_HOLD checks;
 * what they cannot take waits here, and the main thread checks some of it
 * itself between turns of its event loop (HELP_CHUNK), so a main thread
 * with time to spare verifies too instead of idling while its one thread
 * of a 2-core box is the bottleneck.
 * If a thread cannot start, dies, or holds checks without answering for
 * THREAD_STALL_MS, its checks and all later ones run through `fallback`
 * (libuv's pool), so a verification is never lost or left hanging.
 * Browsers have no pool (`createVerifyPool` returns undefined): WebCrypto
 * already verifies off the main thread there.
 */
import { type Clock, type TimerHandle, monotonicNow, systemClock } from "../base/clock.js";
import { createLogger } from "../base/logger.js";
import { nodeBuiltin } from "./node-builtin.js";
import { type SyncCheck, type SyncCrypto, p256SyncCheck } from "./p256-sync-check.js";
import { packEntry } from "./signature-batch.js";

/** Entries per message to a thread: big enough to amortise the message, small enough to spread a frame over all threads. */
const MAX_BATCH = 64;
/**
 * A thread takes another batch only while it holds fewer checks than this
 * (about 4 ms of OpenSSL: enough that it does not wait on a busy main
 * thread between batches). The rest wait in the pool, where the main thread
 * can take some. A writer's puts in flight are capped (256 small puts a
 * peer, network/fair-intake.ts), so with everything sent to the thread at
 * once the main thread never had any to take. Ingest on the 2-core box
 * reached 90-92 % of its CPU bound in 4 runs, against 80-85 % in 8 runs
 * holding 256 (two batches of 128) or not helping (13,833-17,861 against
 * 12,100-15,440 verified puts/s); the 100,000-record catch-up and the relay
 * moved within their noise. Holding 32 in batches of 32 reached 85-88 %.
 */
const THREAD_HOLD = 64;
/**
 * Checks the main thread makes itself in one turn of its event loop while
 * the threads are full (about 1 ms of OpenSSL): small, so that the I/O and
 * merges waiting for that turn are not held up (8 and 32 measured no better).
 */
const HELP_CHUNK = 16;
/**
 * Checks asked for in one turn before the threads start: a node that only
 * verifies a handshake now and then (a client) never pays for starting them;
 * until then, and for such trickles, checks take the one-call path.
 */
const START_AT = 32;
/**
 * A turn asking for this few checks while every thread is idle takes the
 * one-call path: a lone put is not delayed by a round trip to a thread
 * (relay bench, put → subscriber p50 1.02-1.03 ms through the thread vs
 * 0.94-0.98 ms through libuv's pool).
 */
const LONE_CHECKS = 2;
/**
 * A thread's young generation (MiB). Its live data is a batch and a key
 * cache; everything else is garbage at once, so V8's default young
 * generation (tens of MiB) only grew the process's memory: the 1M catch-up
 * peaked at 307 MiB RSS with it.
 */
const THREAD_YOUNG_GENERATION_MB = 2;
/**
 * A thread's old generation (MiB). Its live data is a key cache of small
 * wrappers, so without a cap V8 let garbage pile up there before collecting
 * it, and with it the 4-5 KiB of native memory of each imported key: 10,000
 * idle clients' handshakes cost 8.6-9.3 KiB of server RSS each, 7.8-8.5
 * with the cap (7.3-7.5 with no threads). A 100,000-record catch-up ran in
 * 8.59 and 9.49 s capped, 8.93 and 9.42 s not.
 */
const THREAD_OLD_GENERATION_MB = 16;
/**
 * A thread holding checks that answered nothing for this long is taken for
 * wedged: it is stopped and its checks, and all later ones, take the
 * fallback, as when a thread dies. A batch takes milliseconds; only a thread
 * that stopped answering gets near this.
 */
export const THREAD_STALL_MS = 30_000;

interface WorkerLike {
  postMessage(value: unknown): void;
  on(event: "message", listener: (value: { id: number; results: Uint8Array }) => void): void;
  on(event: "error" | "exit", listener: (value: unknown) => void): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}
interface WorkerThreads {
  Worker: new (url: URL, options?: { resourceLimits?: { maxYoungGenerationSizeMb?: number; maxOldGenerationSizeMb?: number } }) => WorkerLike;
}
interface NodeOs {
  availableParallelism?: () => number;
  cpus(): unknown[];
}

const log = createLogger("verify-pool");

type Check = { h: string; a: string; s: string; entry: string; resolve: (valid: boolean) => void };
type Fallback = (h: string, a: string, s: string) => Promise<boolean>;

class Thread {
  readonly jobs = new Map<number, Check[]>();
  outstanding = 0;
  /** When the thread last took work while idle or answered (the stall watch counts from there). */
  lastProgress = 0;
  watch: TimerHandle | undefined;
  constructor(readonly worker: WorkerLike) {}
}

export class VerifyPool {
  /** Signature checks done by the threads and by the main thread helping them (tests and benches read it). */
  verified = 0;
  /** Of those, the checks the main thread made itself while the threads were full. */
  helped = 0;
  /** Messages sent to the threads (each a batch of checks). */
  batches = 0;
  private readonly threads: Thread[] = [];
  private queue: Check[] = [];
  /** Batches the threads could not take yet, oldest first. */
  private waiting: Check[][] = [];
  private scheduled = false;
  private helpScheduled = false;
  private nextJob = 0;
  private broken = false;

  constructor(
    private readonly size: number,
    private readonly workerThreads: WorkerThreads,
    private readonly fallback: Fallback,
    private readonly clock: Clock = systemClock,
    private readonly stallMs = THREAD_STALL_MS,
    /** A synchronous check on the calling thread, with which it helps full threads; none: it never helps. */
    private readonly help: SyncCheck | undefined = undefined,
  ) {}

  /** Number of threads the pool runs (at most; they start on first use). */
  get threadCount(): number {
    return this.size;
  }

  /** Resolves whether `s` is `a`'s signature of `h` (never rejects). Formats are checked by the caller. */
  verify(h: string, a: string, s: string): Promise<boolean> {
    const entry = this.broken ? undefined : packEntry(h, a, s);
    if (entry === undefined) return this.fallback(h, a, s);
    return new Promise<boolean>((resolve) => {
      this.queue.push({ h, a, s, entry, resolve });
      if (this.queue.length >= MAX_BATCH * this.size) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Queues what this turn asked for, split evenly over the threads in batches of at most MAX_BATCH, and hands out what they can take. */
  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    if (queue.length === 0) return;
    if ((this.threads.length === 0 && queue.length < START_AT) || (queue.length <= LONE_CHECKS && this.waiting.length === 0 && this.threads.every((t) => t.outstanding === 0))) {
      this.runFallback(queue);
      return;
    }
    const per = Math.min(MAX_BATCH, Math.ceil(queue.length / this.size));
    for (let from = 0; from < queue.length; from += per) this.waiting.push(queue.slice(from, from + per));
    this.pump();
  }

  /** Gives waiting batches to threads with room; the main thread helps with what is left. */
  private pump(): void {
    while (this.waiting.length > 0) {
      const thread = this.broken ? undefined : this.withRoom();
      if (!thread) break;
      this.dispatch(thread, this.waiting.shift()!);
    }
    if (this.broken) for (const checks of this.waiting.splice(0)) this.runFallback(checks);
    if (this.waiting.length > 0 && this.help && !this.helpScheduled) {
      this.helpScheduled = true;
      setImmediate(() => this.helpOnce());
    }
  }

  /** One turn's help: the main thread checks the oldest HELP_CHUNK waiting checks itself. */
  private helpOnce(): void {
    this.helpScheduled = false;
    const batch = this.waiting[0];
    if (!batch || !this.help) return;
    const chunk = batch.splice(0, HELP_CHUNK);
    if (batch.length === 0) this.waiting.shift();
    for (const c of chunk) c.resolve(this.help(c.h, c.a, c.s));
    this.verified += chunk.length;
    this.helped += chunk.length;
    this.pump();
  }

  private dispatch(thread: Thread, checks: Check[]): void {
    let packed = "";
    for (const c of checks) packed += c.entry;
    const id = this.nextJob++;
    thread.jobs.set(id, checks);
    if (thread.outstanding === 0) {
      thread.worker.ref();
      thread.lastProgress = monotonicNow(this.clock);
      this.watch(thread, this.stallMs);
    }
    thread.outstanding += checks.length;
    this.batches++;
    thread.worker.postMessage({ id, packed });
  }

  /** The thread with the fewest checks outstanding, starting one while fewer than `size` run; undefined when every thread holds THREAD_HOLD checks. */
  private withRoom(): Thread | undefined {
    let best: Thread | undefined;
    for (const t of this.threads) if (!best || t.outstanding < best.outstanding) best = t;
    if ((!best || best.outstanding > 0) && this.threads.length < this.size) best = this.start() ?? best;
    if (this.broken) return undefined; // a start that failed gave up every thread, `best` too
    return best && best.outstanding < THREAD_HOLD ? best : undefined;
  }

  private start(): Thread | undefined {
    let worker: WorkerLike;
    try {
      worker = new this.workerThreads.Worker(new URL("./verify-worker.js", import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB, maxOldGenerationSizeMb: THREAD_OLD_GENERATION_MB } });
    } catch {
      this.fail();
      return undefined;
    }
    worker.unref();
    const thread = new Thread(worker);
    worker.on("message", ({ id, results }) => this.done(thread, id, results));
    worker.on("error", () => this.lose(thread));
    worker.on("exit", () => this.lose(thread));
    this.threads.push(thread);
    return thread;
  }

  private done(thread: Thread, id: number, results: Uint8Array): void {
    const checks = thread.jobs.get(id);
    if (!checks) return;
    thread.jobs.delete(id);
    thread.outstanding -= checks.length;
    thread.lastProgress = monotonicNow(this.clock);
    if (thread.outstanding === 0) {
      thread.worker.unref();
      this.clock.clearTimeout(thread.watch);
      thread.watch = undefined;
    }
    this.verified += checks.length;
    for (let i = 0; i < checks.length; i++) checks[i]!.resolve(results[i] === 1);
    this.pump();
  }

  /**
   * Looks at `thread` in `ms`: still holding checks with no answer for the
   * stall time, it is lost. The verdict waits for setImmediate, after the
   * poll phase: a main thread that was blocked itself first takes the
   * answers that queued meanwhile, and a thread that did answer is not
   * blamed for the wait.
   */
  private watch(thread: Thread, ms: number): void {
    this.clock.clearTimeout(thread.watch);
    thread.watch = this.clock.setTimeout(() => {
      thread.watch = undefined;
      setImmediate(() => {
        if (thread.outstanding === 0 || !this.threads.includes(thread) || thread.watch !== undefined) return;
        const quiet = monotonicNow(this.clock) - thread.lastProgress;
        if (quiet < this.stallMs) return this.watch(thread, this.stallMs - quiet);
        log("a verification thread held %d checks without answering for %d ms: stopped; checks now take libuv's pool", thread.outstanding, quiet);
        void thread.worker.terminate();
        this.lose(thread);
      });
    }, ms);
  }

  /** A thread died: its checks run in this thread, and so does everything after. */
  private lose(thread: Thread): void {
    const index = this.threads.indexOf(thread);
    if (index === -1) return;
    this.threads.splice(index, 1);
    this.clock.clearTimeout(thread.watch);
    thread.watch = undefined;
    this.fail();
    for (const checks of thread.jobs.values()) this.runFallback(checks);
    thread.jobs.clear();
  }

  private fail(): void {
    if (!this.broken) log("verification threads given up: checks take libuv's pool from now on");
    this.broken = true;
    for (const t of this.threads.splice(0)) {
      this.clock.clearTimeout(t.watch);
      t.watch = undefined;
      for (const checks of t.jobs.values()) this.runFallback(checks);
      t.jobs.clear();
      void t.worker.terminate();
    }
    for (const checks of this.waiting.splice(0)) this.runFallback(checks);
  }

  private runFallback(checks: Check[]): void {
    for (const c of checks) void this.fallback(c.h, c.a, c.s).then(c.resolve, () => c.resolve(false));
  }
}

/**
 * The pool for this platform: Node's worker threads, as many as
 * `TOOLDB_VERIFY_THREADS` says (a number, `cores` for one a core, `0` for
 * none: every check then takes libuv's pool). By default one fewer than the
 * cores, so the main thread, which parses, hashes and merges what the
 * threads verify, keeps a core of its own; undefined on one core, and in
 * browsers. On the 2-core box, ingest with libuv's pool at 2 threads (one a
 * core) ran 11,563-14,314 verified puts/s in 6 alternating runs, and
 * 13,870-15,015 with one verification thread; a 200,000-record catch-up took
 * 17.6 and 17.9 s against 18.7 and 21.0 s; relay moved within its noise.
 * Three threads busy on two cores left the main thread two thirds of one.
 * While the threads are full the main thread helps them between turns of
 * its event loop, unless `TOOLDB_VERIFY_MAIN_HELPS=0`.
 */
export function createVerifyPool(fallback: Fallback): VerifyPool | undefined {
  const workerThreads = nodeBuiltin<WorkerThreads>("node:worker_threads");
  const os = nodeBuiltin<NodeOs>("node:os");
  if (!workerThreads || !os || typeof setImmediate !== "function") return undefined;
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const size = threadsWanted(env?.TOOLDB_VERIFY_THREADS, cores);
  const crypto = env?.TOOLDB_VERIFY_MAIN_HELPS === "0" ? undefined : nodeBuiltin<SyncCrypto>("node:crypto");
  return size > 0 ? new VerifyPool(Math.min(size, 16), workerThreads, fallback, systemClock, THREAD_STALL_MS, crypto && p256SyncCheck(crypto)) : undefined;
}

/** Verification threads for a `TOOLDB_VERIFY_THREADS` value on `cores` cores (anything unreadable: the default). */
export function threadsWanted(configured: string | undefined, cores: number): number {
  if (configured === "cores") return cores;
  if (configured !== undefined && /^\d+$/.test(configured)) return Number(configured);
  return Math.max(0, cores - 1);
}
