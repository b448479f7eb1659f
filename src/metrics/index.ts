// tooldb-dht/metrics: Prometheus metrics and health for Node servers (prom-client).
// Never imported by the core or the browser entry.
export { createMetrics, type MetricsOptions, type ToolDbMetrics } from "./metrics.js";
export { HealthMonitor, statusLine, type HealthReport, type HealthOptions } from "./health.js";
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./http.js";
export { StatusHistory, STATUS_HISTORY_DEFAULTS, type StatusSample, type StatusHistoryOptions } from "./status-history.js";
