/**
 * Provider counters, shown as JSON on /status and in the Prometheus text
 * format on /metrics.
 * @module
 */

/** The provider's counters. */
export class Metrics {
  /** When the provider started (ms since the epoch). */
  readonly startedAt = Date.now();
  /** Responses by status code. */
  readonly responses = new Map<number, number>();
  /** Body bytes sent. */
  bytesServed = 0;
  /** Jobs run, by status. */
  readonly jobs = new Map<string, number>();
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
    let jobsTotal = 0;
    for (const v of this.jobs.values()) jobsTotal += v;
    return {
      requests_total: this.requestsTotal(),
      bytes_served_total: this.bytesServed,
      jobs_run_total: jobsTotal,
      jobs_by_status: Object.fromEntries(this.jobs),
      errors_total: this.errorsTotal(),
      responses_by_status: Object.fromEntries(this.responses),
      artifact_downloads: Object.fromEntries(this.downloads),
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
      "# HELP phase_bytes_served_total Body bytes sent.",
      "# TYPE phase_bytes_served_total counter",
      `phase_bytes_served_total ${this.bytesServed}`,
      "# HELP phase_jobs_total Jobs run, by status.",
      "# TYPE phase_jobs_total counter",
      ...[...this.jobs].map(([s, v]) =>
        `phase_jobs_total{status="${label(s)}"} ${v}`
      ),
      "# HELP phase_artifact_downloads_total Artifact GETs, by file.",
      "# TYPE phase_artifact_downloads_total counter",
      ...[...this.downloads].map(([a, v]) =>
        `phase_artifact_downloads_total{artifact="${label(a)}"} ${v}`
      ),
    ];
    return lines.join("\n") + "\n";
  }
}
