/// <reference path="../../../types/multicast-dns.d.ts" preserve="true" />
import { createHash } from "node:crypto";
import multicastDns, { type MdnsPacket, type MdnsRemoteInfo, type MulticastDns } from "multicast-dns";
import { TimerGroup, type Clock } from "../../base/clock.js";
import { errorText } from "../../base/errors.js";
import { createLogger } from "../../base/logger.js";
import type { PeerAddress } from "../peer-table.js";
import type { DiscoveryMechanism, MechanismSink } from "./mechanism.js";

const log = createLogger("discovery:lan");

export interface LanOptions {
  /** IPv4 address of the interface to use for multicast (default: the system's choice). */
  interface?: string;
  /** Answer queries with this server's port (servers); omit on clients. */
  port?: number;
  /** The host to advertise (A record); default: the address the answer comes from. */
  host?: string;
  /** First re-query delay (ms); doubles up to maxQueryInterval. Default 1000 / 30000. */
  queryInterval?: number;
  maxQueryInterval?: number;
  /** How long the first query waits for answers before its round counts as done (ms). Default 1000. */
  roundWindow?: number;
  /** mDNS port and group (tests may move them). Default 5353, 224.0.0.251. */
  mdnsPort?: number;
  mdnsGroup?: string;
  clock?: Clock;
}

/** The mDNS service name of a topic: <first 40 hex of sha256(topic)>._tooldb._tcp.local */
export function lanServiceName(topic: string): string {
  return `${createHash("sha256").update(topic).digest("hex").slice(0, 40)}._tooldb._tcp.local`;
}

/**
 * LAN discovery on multicast DNS (`multicast-dns`): servers answer queries
 * for the topic's service name with an SRV record (their port) and, when
 * they have a specific address, an A record; every node queries at start
 * and then with backoff. Needs a multicast-capable interface (not loopback).
 */
export class LanMechanism implements DiscoveryMechanism {
  readonly name = "lan";
  private mdns: MulticastDns | undefined;
  private sink: MechanismSink | undefined;
  private readonly timers: TimerGroup;
  private readonly service: string;
  private readonly target: string;
  private stopped = false;
  private stopping: Promise<void> | undefined;

  constructor(
    topic: string,
    private readonly options: LanOptions = {},
  ) {
    this.timers = new TimerGroup(options.clock);
    this.service = lanServiceName(topic);
    this.target = `tooldb-${Math.random().toString(36).slice(2, 10)}.local`;
  }

  async start(sink: MechanismSink): Promise<void> {
    if (this.stopped) return;
    this.sink = sink;
    const o = this.options;
    // Bind the wildcard: a socket bound to a unicast address never receives multicast.
    const mdns = multicastDns({ bind: "0.0.0.0", interface: o.interface, port: o.mdnsPort ?? 5353, ip: o.mdnsGroup ?? "224.0.0.251", reuseAddr: true, loopback: true });
    this.mdns = mdns;
    mdns.on("warning", (err: Error) => log("warning: %s", errorText(err)));
    mdns.on("query", (q: MdnsPacket) => this.onQuery(q));
    mdns.on("response", (r: MdnsPacket, rinfo: MdnsRemoteInfo) => this.onResponse(r, rinfo));
    await new Promise<void>((resolve, reject) => {
      mdns.once("ready", resolve);
      mdns.once("error", reject);
    });
    mdns.on("error", (err: Error) => log("error: %s", errorText(err)));
    if (this.stopped) return;
    this.query();
    this.timers.setTimeout(() => this.sink?.roundDone(), o.roundWindow ?? 1000);
    this.schedule(o.queryInterval ?? 1000);
  }

  private schedule(delay: number): void {
    this.timers.setTimeout(() => {
      this.query();
      this.schedule(Math.min(delay * 2, this.options.maxQueryInterval ?? 30_000));
    }, delay);
  }

  private query(): void {
    this.mdns?.query({ questions: [{ name: this.service, type: "SRV" }] });
  }

  private onQuery(q: MdnsPacket): void {
    const port = this.options.port;
    if (port === undefined || this.stopped) return;
    if (!q.questions?.some((x) => x.name === this.service)) return;
    const answers: MdnsPacket["answers"] = [{ name: this.service, type: "SRV", ttl: 120, data: { port, target: this.target, priority: 0, weight: 0 } }];
    if (this.options.host) answers.push({ name: this.target, type: "A", ttl: 120, data: this.options.host });
    this.mdns?.respond({ answers });
  }

  private onResponse(r: MdnsPacket, rinfo: MdnsRemoteInfo): void {
    if (this.stopped) return;
    const records = [...(r.answers ?? []), ...(r.additionals ?? [])];
    for (const srv of records) {
      if (srv.name !== this.service || srv.type !== "SRV") continue;
      const data = srv.data as { port?: number; target?: string };
      if (!Number.isInteger(data.port) || !data.port || data.port > 65535) continue;
      const a = records.find((x) => x.type === "A" && x.name === data.target);
      const host = typeof a?.data === "string" ? a.data : rinfo.address;
      if (data.target === this.target) continue; // our own answer
      this.sink?.found({ host, port: data.port } satisfies PeerAddress);
    }
  }

  refresh(): void {
    if (!this.stopped) this.query();
  }

  /** Idempotent: every call resolves once the mDNS socket is closed. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.sink = undefined;
    this.timers.clearAll();
    const mdns = this.mdns;
    this.mdns = undefined;
    if (mdns) await new Promise<void>((resolve) => mdns.destroy(() => resolve()));
  }
}
