/**
 * The status page for people: `GET /` (or `/status`) with `Accept:
 * text/html`. It renders the same document `/status` answers as JSON, so the
 * figures are the same; everything shown is escaped, and the page loads no
 * script, font, style sheet or image from anywhere.
 * @module
 */

/** One artifact as the status document lists it. */
export interface StatusArtifact {
  /** File name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** Hex sha256. */
  sha256: string;
  /** GETs of it (full or ranged) since start. */
  downloads: number;
}

/** The parts of the status document the page shows. */
export interface StatusDocument {
  /** Product version. */
  version: string;
  /** Node peer id. */
  peer_id: string;
  /** Default channel and arch. */
  channel: string;
  /** Default architecture. */
  arch: string;
  /** Seconds since start. */
  uptime_seconds: number;
  /** Health as /health reports it. */
  health: { status: string; reason: string | null };
  /** Artifacts of the default channel/arch. */
  artifacts: StatusArtifact[];
  /** The manifest served for the default channel/arch, or null. */
  manifest:
    | {
      manifest_version: number;
      expires_at: string;
      valid: boolean;
      signers: string[];
    }
    | null;
  /** libp2p peers connected now, or null without libp2p. */
  peers: number | null;
  /** Counters. */
  metrics: {
    jobs_run_total: number;
    jobs_by_status: Record<string, number>;
    jobs_refused_by_reason: Record<string, number>;
    jobs_cancelled_total: number;
    requests_total: number;
    bytes_served_total: number;
    errors_total: number;
  };
  /** Newest receipts (none in Private mode). */
  recent_receipts: {
    job_id: string;
    timestamp: string;
    status: string;
    exit_code: number | null;
    module_hash: string;
  }[];
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

function rows(cells: string[][]): string {
  return cells.map((row) =>
    `<tr>${row.map((c) => `<td>${c}</td>`).join("")}</tr>`
  ).join("\n");
}

function counts(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length === 0
    ? "none"
    : entries.map(([k, v]) => `${escapeHtml(k)} ${v}`).join(", ");
}

/** Renders the status document as a self-contained HTML page. */
export function renderStatusPage(status: StatusDocument): string {
  const e = escapeHtml;
  const m = status.manifest;
  const manifest = m
    ? `version <span data-field="manifest_version">${m.manifest_version}</span>, ${
      m.valid ? "valid" : "<strong>expired</strong>"
    } until ${e(m.expires_at)}, signed by ${m.signers.map(e).join(", ")}`
    : "none";
  const artifacts = status.artifacts.length === 0
    ? `<p>No artifacts.</p>`
    : `<table id="artifacts"><thead><tr><th>file</th><th>size</th><th>sha256</th><th>downloads</th></tr></thead><tbody>
${
      rows(status.artifacts.map((a) => [
        e(a.name),
        `<span data-bytes="${a.size}">${bytes(a.size)}</span>`,
        `<code>${e(a.sha256)}</code>`,
        `<span data-downloads>${a.downloads}</span>`,
      ]))
    }
</tbody></table>`;
  const receipts = status.recent_receipts.length === 0
    ? `<p>None kept.</p>`
    : `<table id="receipts"><thead><tr><th>time</th><th>job</th><th>status</th><th>exit</th><th>module</th></tr></thead><tbody>
${
      rows(status.recent_receipts.map((r) => [
        e(r.timestamp),
        e(r.job_id),
        e(r.status),
        e(r.exit_code ?? "–"),
        `<code>${e(r.module_hash.slice(0, 19))}…</code>`,
      ]))
    }
</tbody></table>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Phase node ${e(status.peer_id.slice(-8))}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d232a; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.8rem; }
code { font-size: 0.85em; word-break: break-all; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #dde2e7; vertical-align: top; }
.ok { color: #116329; } .bad { color: #a40e26; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; } dt { color: #57606a; }
</style>
</head>
<body>
<h1>Phase node <span class="${
    status.health.status === "ok" ? "ok" : "bad"
  }" id="health">${e(status.health.status)}</span></h1>
<dl>
<dt>peer id</dt><dd><code id="peer-id">${e(status.peer_id)}</code></dd>
<dt>version</dt><dd id="version">${e(status.version)}</dd>
<dt>serves</dt><dd>${e(status.channel)}/${e(status.arch)}</dd>
<dt>uptime</dt><dd id="uptime" data-seconds="${status.uptime_seconds}">${
    duration(status.uptime_seconds)
  }</dd>
<dt>libp2p peers</dt><dd id="peers">${status.peers ?? "off"}</dd>
${
    status.health.reason
      ? `<dt>problem</dt><dd class="bad">${e(status.health.reason)}</dd>`
      : ""
  }
</dl>
<h2>Boot manifest</h2>
<p id="manifest">${manifest}</p>
<h2>Artifacts</h2>
${artifacts}
<h2>Jobs</h2>
<dl>
<dt>run</dt><dd id="jobs-run">${status.metrics.jobs_run_total}</dd>
<dt>by status</dt><dd>${counts(status.metrics.jobs_by_status)}</dd>
<dt>refused</dt><dd>${counts(status.metrics.jobs_refused_by_reason)}</dd>
<dt>cancelled</dt><dd>${status.metrics.jobs_cancelled_total}</dd>
<dt>HTTP requests</dt><dd id="requests">${status.metrics.requests_total}</dd>
<dt>bytes served</dt><dd>${bytes(status.metrics.bytes_served_total)}</dd>
</dl>
<h2>Recent receipts</h2>
${receipts}
<p><small>Machines: the same document as JSON at <a href="/status">/status</a>; Prometheus at <a href="/metrics">/metrics</a>.</small></p>
</body>
</html>
`;
}
