/**
 * Per-component debug logging, off by default. The library never writes to
 * stdout; enable with DEBUG=tooldb:* (or a comma list of prefixes, with a
 * trailing * as wildcard), or by passing `debug: true` to ToolDb.
 */
export type LogFn = ((...args: unknown[]) => void) & { readonly enabled: boolean; readonly namespace: string };

export type LogSink = (namespace: string, args: unknown[]) => void;

let patterns: string[] = readEnvPatterns();
let sink: LogSink = defaultSink;

function readEnvPatterns(): string[] {
  const env = typeof process !== "undefined" ? process.env?.DEBUG : undefined;
  return (env ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

function defaultSink(namespace: string, args: unknown[]): void {
  const stamp = new Date().toISOString();
  // stderr so that CLI output on stdout stays clean
  const [first, ...rest] = args;
  if (typeof first === "string") console.error(`${stamp} ${namespace} ${first}`, ...rest);
  else console.error(`${stamp} ${namespace}`, ...args);
}

function matches(namespace: string): boolean {
  return patterns.some((p) => (p.endsWith("*") ? namespace.startsWith(p.slice(0, -1)) : namespace === p));
}

/** Turn on namespaces at run time (same syntax as DEBUG). */
export function enableLogging(spec: string): void {
  patterns = [...patterns, ...spec.split(",").map((s) => s.trim()).filter(Boolean)];
}

/** Route log lines somewhere else (tests, a status page). */
export function setLogSink(fn: LogSink | undefined): void {
  sink = fn ?? defaultSink;
}

export function createLogger(component: string, forceEnabled = false): LogFn {
  const namespace = component.startsWith("tooldb") ? component : `tooldb:${component}`;
  const fn = ((...args: unknown[]) => {
    if (forceEnabled || matches(namespace)) sink(namespace, args);
  }) as LogFn;
  Object.defineProperty(fn, "enabled", { get: () => forceEnabled || matches(namespace) });
  Object.defineProperty(fn, "namespace", { value: namespace });
  return fn;
}
