/**
 * One server or client process of the fault campaign, started by the
 * harness with `fork` (config in FAULT_WORKER, messages over IPC). It is a
 * plain DHTServer/DHTClient with short timings; the only changes are a
 * clock the harness can skew and, for servers, announcing the port of the
 * harness's proxy in front of it instead of its own.
 */
import { ErrorCode, isToolDbError } from "../src/base/errors.js";
import type { Clock } from "../src/base/clock.js";
import { DHTClient, DHTServer } from "../src/platform/dht-server.js";
import type { DhtNode, DhtNodeOptions } from "../src/platform/dht-node.js";
import type { HarnessCommand, WorkerConfig, WorkerReport } from "./protocol.js";
import { diagnose, keepDebugLog } from "./worker-diag.js";

const config = JSON.parse(process.env.FAULT_WORKER ?? "null") as WorkerConfig | null;
if (!config) throw new Error("faults/worker.js is started by the fault campaign harness (FAULT_WORKER unset)");

keepDebugLog();
let skewMs = config.skewMs;
const clock: Clock = {
  now: () => Date.now() + skewMs,
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

function report(message: WorkerReport): void {
  process.send?.(message);
}

class ProxiedServer extends DHTServer {
  constructor(
    topic: string,
    port: number,
    private readonly proxyPort: number,
    options: DhtNodeOptions,
  ) {
    super(topic, "127.0.0.1", port, options);
  }

  protected override announcePort(): number {
    return this.proxyPort;
  }
}

const options: DhtNodeOptions = {
  bootstrap: config.bootstrap,
  dhtHost: "127.0.0.1",
  dataDir: config.dataDir,
  dialRetries: Infinity,
  penaltyMs: 500,
  discovery: { timeout: 500, fastInterval: 500, slowInterval: 5000, lookupTimeout: 3000 },
  db: {
    clock,
    wait: 100,
    maxReconnectDelay: 1000,
    handshakeTimeout: 2000,
    heartbeatInterval: config.heartbeatMs,
    outboxRetryInterval: 500,
  },
};

const node: DhtNode =
  config.role === "server"
    ? new ProxiedServer(config.topic, config.port!, config.proxyPort!, options)
    : new DHTClient(config.topic, { ...options, maxConnections: 2 });

let writing = config.role === "client";
let written = 0;
/** Client ids of the servers that confirmed each write (by hash) so far. */
const confirmations = new Map<string, string[]>();
node.db.on("put-confirmed", ({ h, server }) => confirmations.get(h)?.push(server));

/** The servers that confirmed `h`, and forget it. */
function confirmedBy(h: string): string[] {
  const by = confirmations.get(h) ?? [];
  confirmations.delete(h);
  return by;
}

/** Writes with acknowledged puts until told to stop; reports every confirmed write. */
async function writeLoop(): Promise<void> {
  const db = node.db;
  while (writing) {
    const n = written++;
    // Own keys, plus keys every client writes (last writer wins must converge).
    const key = n % 3 === 2 ? `shared-${n % 7}` : `${config!.name}-${n % config!.keys}`;
    const value = { by: config!.name, run: config!.run, n };
    // The write's hash is known once it is signed: its confirmations are collected from then on.
    const watch = (message: { data: { h: string; k: string } }, from: string | undefined) => void (from === undefined && message.data.k === key && confirmations.set(message.data.h, []));
    db.on("put", watch);
    try {
      const put = await db.putData(key, value, false, { ack: 1, timeoutMs: config!.ackTimeoutMs });
      const record = put.data as { h: string; t: number };
      report({ type: "acked", key, h: record.h, t: record.t, by: confirmedBy(record.h) });
    } catch (err) {
      if (!writing && isToolDbError(err, ErrorCode.CLOSED)) return;
      if (!isToolDbError(err, ErrorCode.ACK_TIMEOUT)) throw err;
      const local = await db.records.get(key);
      if (local) report({ type: "unacked", key, h: local.h, t: local.t, by: confirmedBy(local.h) });
    } finally {
      db.off("put", watch);
    }
    await new Promise((r) => setTimeout(r, config!.writeEveryMs));
  }
}

async function dump(): Promise<Array<[string, string, number]>> {
  const keys = await node.db.records.query("");
  const out: Array<[string, string, number]> = [];
  for (const key of keys) {
    const record = await node.db.records.get(key);
    if (record) out.push([key, record.h, record.t]);
  }
  return out;
}

/**
 * Waits (bounded) until no write waits for a confirmation. A write confirmed
 * by servers the client has no reason to trust yet (found on the DHT, never
 * read from: this client only writes) stays in the outbox for a trusted one
 * (src/node/server-trust.ts): confirmed, it is not counted.
 */
async function quiesce(ms: number): Promise<number> {
  writing = false;
  await loop;
  const deadline = Date.now() + ms;
  while (node.db.outbox.unconfirmed > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return node.db.outbox.unconfirmed;
}

// The harness gone (killed, crashed): nothing is left to report to, so this process goes too.
process.on("disconnect", () => process.exit(0));

process.on("message", (raw) => {
  const command = raw as HarnessCommand;
  switch (command.type) {
    case "skew":
      skewMs = command.ms;
      break;
    case "dump":
      void dump().then((records) => report({ type: "dump", records }));
      break;
    case "diag":
      report({ type: "diag", state: diagnose(node) });
      break;
    case "quiesce":
      void quiesce(command.ms).then((outbox) => report({ type: "quiet", outbox, pending: node.db.outbox.pending().filter((p) => !p.provisional) }));
      break;
    case "stop":
      writing = false;
      void node.stop().then(() => process.exit(0));
      break;
  }
});

let loop: Promise<void> = Promise.resolve();
await node.start();
report({ type: "ready", id: node.db.network.getClientAddress() });
if (writing) loop = writeLoop();
