/**
 * `phase provider status|list` and `phase fetch`: talking to a running
 * provider.
 * @module
 */
import { download, fetchJson, type StatusDocument } from "../provider/mod.ts";
import { validateBootManifest } from "../schemas/mod.ts";
import { CliError, UsageError } from "./errors.ts";
import { envVar } from "./paths.ts";
import { formatBytes, ProgressLine } from "./progress.ts";
import { parseCommandLine, usageError } from "./spec.ts";
import { COMMANDS } from "./specs.ts";

function providerUrl(explicit?: string): string {
  return (explicit ?? envVar("PHASE_PROVIDER") ?? "http://127.0.0.1:8080")
    .replace(/\/+$/, "");
}

/** `phase provider status [--url URL] [--json]` */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    COMMANDS.provider.subcommands.status,
    argv,
  );
  const url = providerUrl(values.url);
  const { status, body } = await fetchJson(`${url}/status`);
  if (status !== 200) {
    throw new CliError(`${url}/status answered HTTP ${status}`);
  }
  const s = body as StatusDocument;
  if (values.json) {
    console.log(JSON.stringify(s));
  } else {
    console.log(`provider:  ${url}`);
    console.log(
      `health:    ${s.health.status}${
        s.health.reason ? ` (${s.health.reason})` : ""
      }`,
    );
    console.log(`version:   ${s.version} (${s.channel}/${s.arch})`);
    console.log(`peer id:   ${s.peer_id}`);
    console.log(`uptime:    ${s.uptime_seconds} s`);
    console.log(
      `served:    ${s.metrics.requests_total} requests, ${
        formatBytes(s.metrics.bytes_served_total)
      }, ${s.metrics.jobs_run_total} jobs, ${s.metrics.errors_total} errors`,
    );
  }
  return s.health.status === "ok" ? 0 : 1;
}

/** `phase provider list [--url URL] [--channel C] [--arch A] [--json]` */
export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    COMMANDS.provider.subcommands.list,
    argv,
  );
  const url = providerUrl(values.url);
  const path = values.channel || values.arch
    ? `/${values.channel ?? "stable"}/${values.arch ?? "x86_64"}/manifest.json`
    : "/manifest.json";
  const { status, body } = await fetchJson(`${url}${path}`);
  if (status !== 200) {
    throw new CliError(
      `${url}${path} answered HTTP ${status}: ${
        (body as { reason?: string }).reason ?? ""
      }`,
    );
  }
  const manifest = validateBootManifest(body);
  if (values.json) {
    console.log(JSON.stringify(manifest.artifacts));
    return 0;
  }
  console.log(
    `${manifest.channel}/${manifest.arch} manifest_version ${manifest.manifest_version}, expires ${manifest.expires_at}`,
  );
  for (const [name, a] of Object.entries(manifest.artifacts)) {
    console.log(
      `${name.padEnd(12)} ${a.filename.padEnd(24)} ${
        String(a.size).padStart(12)
      }  sha256:${a.sha256}`,
    );
  }
  return 0;
}

/** `phase fetch --url URL --sha256 HEX --output FILE [--json]` */
export async function fetchCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(COMMANDS.fetch, argv);
  if (!values.url?.length || !values.sha256 || !values.output) {
    throw usageError(COMMANDS.fetch);
  }
  const sha256 = values.sha256.replace(/^sha256:/, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    throw new UsageError("--sha256 wants 64 hex digits");
  }
  const folder = values.output.includes("/")
    ? values.output.slice(0, values.output.lastIndexOf("/"))
    : "";
  if (folder) await Deno.mkdir(folder, { recursive: true });
  const progress = new ProgressLine(
    values.output,
    !values.json && !values.quiet && Deno.stderr.isTerminal(),
  );
  const result = await download({
    urls: values.url,
    sha256,
    output: values.output,
    onProgress: (p) => progress.update(p.received, p.total),
    onRetry: (reason) => progress.note(`retrying: ${reason}`),
  });
  progress.done();
  if (values.json) console.log(JSON.stringify(result));
  else if (!values.quiet) {
    console.error(
      result.alreadyPresent
        ? `${values.output} already has sha256 ${sha256}`
        : `fetched ${values.output} (${
          formatBytes(result.size)
        }, sha256 verified${
          result.resumes ? `, resumed ${result.resumes}x` : ""
        })`,
    );
  }
  return 0;
}
