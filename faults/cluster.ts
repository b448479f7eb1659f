import { freePort } from "./ports.js";
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BootstrapNode, startBootstrapNode } from "../src/discovery/bootstrap-node.js";
import type { HarnessCommand, WorkerConfig, WorkerReport } from "./protocol.js";
import { BlackholeProxy } from "./proxy.js";

const WORKER = fileURLToPath(new URL("./worker.js", import.meta.url));
const REAPER = fileURLToPath(new URL("./reaper.js", import.meta.url));
/** A worker's start (a node process loading its modules and stores) takes seconds on a machine at load 30. */
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;

/** The reaper process (faults/reaper.ts): SIGKILLs the workers it was told of when this process goes. */
export class Reaper {
  private readonly child: ChildProcess;

  constructor() {
    this.child = fork(REAPER, [], { detached: true, stdio: ["ignore", "ignore", "ignore", "ipc"] });
    // It must not keep the campaign alive: it only has to outlive it.
    this.child.unref();
    this.child.channel?.unref();
  }

  watch(pid: number | undefined): void {
    if (pid !== undefined && this.child.connected) this.child.send({ watch: pid });
  }

  forget(pid: number | undefined): void {
    if (pid !== undefined && this.child.connected) this.child.send({ forget: pid });
  }

  /** Lets it go (it kills whatever is still listed, then exits). */
  close(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

/** A worker process the harness can kill, pause, restart and ask things. */
export class Worker {
  private child: ChildProcess | undefined;
  private expectExit = false;
  private readonly output: string[] = [];
  state: "down" | "up" | "paused" = "down";
  /** Busy with a fault (not picked for another one). */
  faulted = false;

  constructor(
    readonly config: WorkerConfig,
    private readonly onReport: (worker: Worker, report: WorkerReport) => void,
    private readonly onCrash: (description: string) => void,
    private readonly reaper: Reaper,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** Forks the worker and resolves once it reports ready. */
  start(): Promise<void> {
    this.expectExit = false;
    const child = fork(WORKER, [], { env: { ...process.env, FAULT_WORKER: JSON.stringify(this.config) }, stdio: ["ignore", "pipe", "pipe", "ipc"] });
    this.child = child;
    this.reaper.watch(child.pid);
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        this.output.push(...chunk.toString().split("\n").filter(Boolean));
        this.output.splice(0, Math.max(0, this.output.length - 30));
      });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      child.on("message", (raw) => {
        const report = raw as WorkerReport;
        if (report.type === "ready") {
          clearTimeout(timer);
          this.state = "up";
          resolve();
        }
        this.onReport(this, report);
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        this.reaper.forget(child.pid);
        this.state = "down";
        if (this.child === child) this.child = undefined;
        if (!this.expectExit || (code !== 0 && signal !== "SIGKILL")) {
          this.onCrash(`${this.name} exited (code ${code}, signal ${signal}):\n  ${this.output.slice(-15).join("\n  ")}`);
        }
        reject(new Error(`${this.name} exited before it was ready`));
      });
    });
  }

  /** kill -9, resolved once the process is gone. */
  kill9(): Promise<void> {
    return this.exit(() => this.child!.kill("SIGKILL"));
  }

  pause(): void {
    this.child?.kill("SIGSTOP");
    this.state = "paused";
  }

  resume(): void {
    this.child?.kill("SIGCONT");
    if (this.child) this.state = "up";
  }

  send(command: HarnessCommand): void {
    this.child?.send(command);
  }

  /** Sends `command` and resolves with the first report of `type` (bounded). */
  ask<T extends WorkerReport["type"]>(command: HarnessCommand, type: T, ms: number): Promise<Extract<WorkerReport, { type: T }>> {
    const child = this.child;
    if (!child) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off("message", listener);
        reject(new Error(`${this.name} did not answer ${command.type} within ${ms} ms`));
      }, ms);
      const listener = (raw: unknown) => {
        if ((raw as WorkerReport).type !== type) return;
        clearTimeout(timer);
        child.off("message", listener);
        resolve(raw as Extract<WorkerReport, { type: T }>);
      };
      child.on("message", listener);
      child.send(command);
    });
  }

  /** Graceful stop; a non-zero exit counts as a crash, and one that takes over STOP_TIMEOUT_MS is killed (and counted). */
  async stop(): Promise<void> {
    const child = this.child;
    const timer = setTimeout(() => {
      this.onCrash(`${this.name} did not stop within ${STOP_TIMEOUT_MS} ms:\n  ${this.output.slice(-15).join("\n  ")}`);
      child?.kill("SIGKILL");
    }, STOP_TIMEOUT_MS);
    try {
      await this.exit(() => this.child!.send({ type: "stop" } satisfies HarnessCommand));
    } finally {
      clearTimeout(timer);
    }
  }

  private exit(trigger: () => void): Promise<void> {
    const child = this.child;
    if (!child) return Promise.resolve();
    this.expectExit = true;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    if (this.state === "paused") this.resume();
    trigger();
    return gone;
  }
}

export interface ClusterOptions {
  servers: number;
  clients: number;
  heartbeatMs: number;
  writeEveryMs: number;
  ackTimeoutMs: number;
  onReport: (worker: Worker, report: WorkerReport) => void;
}

/** Two bootstrap nodes (in this process), servers behind black-hole proxies, clients; all on loopback. */
export class Cluster {
  readonly servers: Worker[] = [];
  readonly clients: Worker[] = [];
  readonly proxies: BlackholeProxy[] = [];
  readonly bootstraps: Array<{ port: number; node: BootstrapNode | undefined }> = [];
  readonly crashes: string[] = [];
  private dir = "";
  private reaper: Reaper | undefined;

  constructor(private readonly options: ClusterOptions) {}

  get workers(): Worker[] {
    return [...this.servers, ...this.clients];
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "tooldb-faults-"));
    const seed = await startBootstrapNode({ host: "127.0.0.1", port: 0 });
    const second = await startBootstrapNode({ host: "127.0.0.1", port: 0, bootstrap: [`127.0.0.1:${seed.address().port}`] });
    for (const node of [seed, second]) this.bootstraps.push({ port: node.address().port, node });
    const bootstrap = this.bootstraps.map((b) => `127.0.0.1:${b.port}`);
    const topic = `faults-${process.pid}`;
    const base = { topic, bootstrap, heartbeatMs: this.options.heartbeatMs, skewMs: 0, writeEveryMs: this.options.writeEveryMs, keys: 12, ackTimeoutMs: this.options.ackTimeoutMs, run: 0 };
    const crash = (d: string) => void this.crashes.push(d);
    const reaper = (this.reaper = new Reaper());
    for (let i = 0; i < this.options.servers; i++) {
      const port = await freePort();
      const proxy = new BlackholeProxy(port);
      const proxyPort = await proxy.listen();
      this.proxies.push(proxy);
      const config: WorkerConfig = { ...base, role: "server", name: `s${i}`, dataDir: join(this.dir, `s${i}`), port, proxyPort };
      this.servers.push(new Worker(config, this.options.onReport, crash, reaper));
    }
    for (let i = 0; i < this.options.clients; i++) {
      const config: WorkerConfig = { ...base, role: "client", name: `c${i}`, dataDir: join(this.dir, `c${i}`) };
      this.clients.push(new Worker(config, this.options.onReport, crash, reaper));
    }
    await Promise.all(this.servers.map((s) => s.start()));
    await Promise.all(this.clients.map((c) => c.start()));
  }

  /** Closes bootstrap node `i`; resolves a function that brings it back on the same port. */
  async loseBootstrap(i: number): Promise<() => Promise<void>> {
    const b = this.bootstraps[i]!;
    await b.node?.close();
    b.node = undefined;
    return async () => {
      const others = this.bootstraps.filter((o) => o !== b).map((o) => `127.0.0.1:${o.port}`);
      b.node = await startBootstrapNode({ host: "127.0.0.1", port: b.port, bootstrap: others });
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    this.reaper?.close();
    await Promise.all(this.proxies.map((p) => p.close()));
    await Promise.all(this.bootstraps.map((b) => b.node?.close()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
