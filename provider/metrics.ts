/**
 * Provider counters, shown as JSON on /status and in the Prometheus text
 * format on /metrics.
 * @module
 */

import type { JobCounters } from "../node/mod.ts";
import type { ListenerStats } from "./listener.ts";

/** The provider's counters. */
export class Metrics {
  /** When the provider started (ms since the epoch). */
  readonly startedAt: number = Date.now();
  /** Responses by status code. */
  readonly responses = new Map<number, number>();
  /** Body bytes written to connections (not merely queued). */
  bytesServed = 0;
  /** The HTTP listener's connection counters, once it runs. */
  connections: ListenerStats | null = null;
  /**
   * The node's job counters (every transport's jobs, not only HTTP's), or
   * null when the node runs no jobs.
   */
  jobs: JobCounters | null = null;
  /** Artifact downloads (GET of an artifact, full or ranged), by file. */
  readonly downloads = new Map<string, number>();

  /** Records one response. */
  response(status: number): void {
    this.responses.set(status, (this.responses.get(status) ?? 0) + 1);
  }

  /** Adds to a keyed counter. */
  static bump(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  /** Seconds since start. */
  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }

  /** Total responses. */
  requestsTotal(): number {
    let n = 0;
    for (const v of this.responses.values()) n += v;
    return n;
  }

  /** Responses with a 5xx status. */
  errorsTotal(): number {
    let n = 0;
    for (const [status, v] of this.responses) if (status >= 500) n += v;
    return n;
  }

  /** The JSON form used by /status. */
  toJSON(): Record<string, unknown> {
    const completed = this.jobs?.completed ?? {};
    return {
      requests_total: this.requestsTotal(),
      bytes_served_total: this.bytesServed,
      jobs_run_total: Object.values(completed).reduce((n, v) => n + v, 0),
      jobs_by_status: completed,
      jobs_refused_by_reason: this.jobs?.refused ?? {},
      jobs_cancelled_total: this.jobs?.cancelled ?? 0,
      errors_total: this.errorsTotal(),
      responses_by_status: Object.fromEntries(this.responses),
      artifact_downloads: Object.fromEntries(this.downloads),
      connections: this.connections,
    };
  }

  /** Prometheus text exposition format (version 0.0.4). */
  toPrometheus(healthy: boolean): string {
    const label = (v: string) =>
      v.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
    const lines = [
      "# HELP phase_up 1 when the provider is healthy.",
      "# TYPE phase_up gauge",
      `phase_up ${healthy ? 1 : 0}`,
      "# HELP phase_uptime_seconds Seconds since the provider started.",
      "# TYPE phase_uptime_seconds gauge",
      `phase_uptime_seconds ${this.uptimeSeconds()}`,
      "# HELP phase_http_responses_total HTTP responses by status code.",
      "# TYPE phase_http_responses_total counter",
      ...[...this.responses].map(([s, v]) =>
        `phase_http_responses_total{code="${s}"} ${v}`
      ),
      ...this.#connectionLines(),
      "# HELP phase_bytes_served_total Body bytes written to connections.",
      "# TYPE phase_bytes_served_total counter",
      `phase_bytes_served_total ${this.bytesServed}`,
      "# HELP phase_jobs_total Jobs run to a receipt (HTTP and libp2p), by status.",
      "# TYPE phase_jobs_total counter",
      ...Object.entries(this.jobs?.completed ?? {}).map(([s, v]) =>
        `phase_jobs_total{status="${label(s)}"} ${v}`
      ),
      "# HELP phase_jobs_refused_total Jobs refused, by reason.",
      "# TYPE phase_jobs_refused_total counter",
      ...Object.entries(this.jobs?.refused ?? {}).map(([r, v]) =>
        `phase_jobs_refused_total{reason="${label(r)}"} ${v}`
      ),
      "# HELP phase_jobs_cancelled_total Jobs whose client went away first.",
      "# TYPE phase_jobs_cancelled_total counter",
      `phase_jobs_cancelled_total ${this.jobs?.cancelled ?? 0}`,
      "# HELP phase_artifact_downloads_total Artifact GETs, by file.",
      "# TYPE phase_artifact_downloads_total counter",
      ...[...this.downloads].map(([a, v]) =>
        `phase_artifact_downloads_total{artifact="${label(a)}"} ${v}`
      ),
    ];
    return lines.join("\n") + "\n";
  }

  #connectionLines(): string[] {
    const c = this.connections;
    if (!c) return [];
    return [
      "# HELP phase_http_connections_open HTTP connections open now.",
      "# TYPE phase_http_connections_open gauge",
      `phase_http_connections_open ${c.open}`,
      "# HELP phase_http_connections_total HTTP connections by what became of them.",
      "# TYPE phase_http_connections_total counter",
      `phase_http_connections_total{outcome="accepted"} ${c.accepted}`,
      `phase_http_connections_total{outcome="refused"} ${c.refused}`,
      `phase_http_connections_total{outcome="evicted"} ${c.evicted}`,
      `phase_http_connections_total{outcome="timed_out"} ${c.timedOut}`,
      `phase_http_connections_total{outcome="stalled"} ${c.stalled}`,
      `phase_http_connections_total{outcome="accept_error"} ${c.acceptErrors}`,
      "# HELP phase_http_requests_refused_total Requests refused for being over their connection's in-flight cap.",
      "# TYPE phase_http_requests_refused_total counter",
      `phase_http_requests_refused_total ${c.streamsRefused}`,
    ];
  }
}
