import { Counter, type Registry } from "prom-client";
import { HTTP_REFUSAL_REASONS, type HttpGuard } from "../limits/http-guard.js";

/** The HTTP fronts a metrics instance counts refusals of (`watch`): by name, e.g. "web" and "metrics". */
export interface HttpRefusals {
  /** Counts `guard`'s refusals under `front` (read at each scrape; every reason starts at 0). Idempotent per front name. */
  watch(front: string, guard: HttpGuard): void;
}

/**
 * `<prefix>http_refused_total{front,reason}`: connections an HTTP front
 * (the `serve --web`/TLS port, the metrics port) closed for being over a
 * cap, by the guard's stable reasons (limits/http-guard.ts
 * HTTP_REFUSAL_REASONS). Follows the guards' running totals at each scrape.
 */
export function httpRefusals(registry: Registry, prefix: string): HttpRefusals {
  const guards = new Map<string, { guard: HttpGuard; seen: Record<string, number> }>();
  const counter = new Counter({
    name: `${prefix}http_refused_total`,
    help: "HTTP connections an HTTP front (web, metrics) closed for being over a cap, by front and reason (per_ip, total, pipelined)",
    labelNames: ["front", "reason"],
    registers: [registry],
    collect() {
      for (const [front, { guard, seen }] of guards) {
        for (const reason of HTTP_REFUSAL_REASONS) {
          const total = guard.refusedBy[reason];
          this.inc({ front, reason }, Math.max(0, total - (seen[reason] ?? 0)));
          seen[reason] = total;
        }
      }
    },
  });
  return {
    watch(front, guard) {
      if (guards.has(front)) return;
      guards.set(front, { guard, seen: {} });
      for (const reason of HTTP_REFUSAL_REASONS) counter.inc({ front, reason }, 0);
    },
  };
}
