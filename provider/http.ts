/**
 * The provider's HTTP surface as a `Request -> Response` handler.
 * @module
 */
import { statfs } from "node:fs/promises";
import { canonicalArch, type Channel, type NodeKey } from "../schemas/mod.ts";
import { type ArtifactStore, CHANNELS, MANIFEST_FILE } from "./artifacts.ts";
import { fileResponse, type ServedFile } from "./file_response.ts";
import { ipxeScript } from "./ipxe.ts";
import { handleJobs, type JobEndpointContext } from "./jobs.ts";
import { jsonResponse } from "./json_response.ts";
import type { ManifestPublisher } from "./manifest_publisher.ts";
import { Metrics } from "./metrics.ts";

/** Files up to this size are kept in memory once read. */
const SMALL_FILE = 64 * 1024;
/** How long a resolved artifact is trusted before it is looked up again. */
const RESOLVE_TTL_MS = 1000;

/** Everything the handler needs. */
export interface ProviderContext {
  /** Product version. */
  version: string;
  /** Default channel. */
  channel: Channel;
  /** Default architecture. */
  arch: string;
  /** Provider key (its peer id is shown). */
  key: NodeKey;
  /** The artifacts. */
  store: ArtifactStore;
  /** Manifests. */
  publisher: ManifestPublisher;
  /** Counters. */
  metrics: Metrics;
  /** The jobs endpoint, or null when jobs are off. */
  jobs: Omit<JobEndpointContext, "metrics"> | null;
  /** Directory whose free space is checked by /health. */
  dataDir: string;
  /** Free bytes below which /health reports the disk full. */
  minFreeBytes: number;
  /** Keys a machine booting through /boot.ipxe pins (else the manifest's signers). */
  pinnedKeys?: string[];
}

/** Health as /health and /status report it. */
export interface Health {
  /** `ok` or `unhealthy`. */
  status: "ok" | "unhealthy";
  /** The artifacts directory can be listed. */
  artifacts_readable: boolean;
  /** Free space in the data directory is above the minimum. */
  disk_space_ok: boolean;
  /** Free bytes in the data directory, when known. */
  disk_free_bytes: number | null;
  /** Why it is unhealthy. */
  reason: string | null;
}

function error(
  status: number,
  message: string,
  reason: string,
  headers: Record<string, string> = {},
) {
  return jsonResponse(status, { error: message, reason }, headers);
}

function contentType(name: string): string {
  if (name.endsWith(".json")) return "application/json";
  if (name.endsWith(".wasm")) return "application/wasm";
  if (name.endsWith(".ipxe")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/** Decodes one path segment; null when it could smuggle a path. */
function segment(raw: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (
    decoded === "" || decoded === "." || decoded === ".." ||
    /[/\\\0]/.test(decoded)
  ) return null;
  return decoded;
}

/** Builds the handler. */
export function createHandler(
  ctx: ProviderContext,
): (request: Request) => Response | Promise<Response> {
  const resolved = new Map<string, { at: number; file: ServedFile | null }>();

  async function artifact(
    channel: string,
    arch: string,
    name: string,
  ): Promise<ServedFile | null> {
    const key = `${channel}/${arch}/${name}`;
    const hit = resolved.get(key);
    if (hit && performance.now() - hit.at < RESOLVE_TTL_MS) return hit.file;
    const found = await ctx.store.resolve(channel, arch, name);
    let file: ServedFile | null = null;
    if (found) {
      const previous = hit?.file;
      const same = previous && previous.path === found.path &&
        previous.size === found.size &&
        previous.mtime.getTime() === found.mtime.getTime();
      file = same ? previous : {
        ...found,
        sha256: await ctx.store.hash(found),
        contentType: contentType(name),
        bytes: found.size <= SMALL_FILE
          ? await Deno.readFile(found.path)
          : undefined,
      };
    }
    if (resolved.size > 4096) resolved.clear();
    resolved.set(key, { at: performance.now(), file });
    return file;
  }

  async function health(): Promise<Health> {
    const readable = await ctx.store.readable();
    let free: number | null = null;
    try {
      const fs = await statfs(ctx.dataDir);
      free = Number(fs.bavail) * Number(fs.bsize);
    } catch {
      free = null;
    }
    const diskOk = free === null || free >= ctx.minFreeBytes;
    const reasons = [
      readable ? null : `artifacts directory ${ctx.store.root} is not readable`,
      diskOk
        ? null
        : `disk full: ${free} bytes free in ${ctx.dataDir}, need ${ctx.minFreeBytes}`,
    ].filter((r) => r !== null);
    return {
      status: reasons.length ? "unhealthy" : "ok",
      artifacts_readable: readable,
      disk_space_ok: diskOk,
      disk_free_bytes: free,
      reason: reasons.length ? reasons.join("; ") : null,
    };
  }

  async function manifest(request: Request, channel: string, arch: string) {
    if (!CHANNELS.includes(channel as Channel) || !canonicalArch(arch)) {
      return error(404, "not found", `no channel/arch ${channel}/${arch}`);
    }
    const published = await ctx.publisher.current(channel as Channel, arch);
    if (!published) {
      return error(
        404,
        "not found",
        `no artifacts for ${channel}/${canonicalArch(arch)}`,
      );
    }
    const headers = {
      "content-type": "application/json",
      etag: published.etag,
      "cache-control": "no-cache",
    };
    const inm = request.headers.get("if-none-match");
    if (
      inm &&
      inm.split(",").some((t) =>
        t.trim() === published.etag || t.trim() === "*"
      )
    ) {
      return new Response(null, { status: 304, headers });
    }
    ctx.metrics.bytesServed += request.method === "HEAD"
      ? 0
      : published.bytes.length;
    const response = new Response(
      request.method === "HEAD"
        ? null
        : published.bytes as Uint8Array<ArrayBuffer>,
      {
        status: 200,
        headers: {
          ...headers,
          "content-length": String(published.bytes.length),
        },
      },
    );
    preparedBodies.set(response, { bytes: published.bytes, download: null });
    return response;
  }

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const raw = url.pathname.split("/").slice(1);
    if (url.pathname === "/jobs") {
      if (!ctx.jobs) {
        return error(404, "not found", "this provider does not run jobs");
      }
      if (request.method !== "POST") {
        return error(405, "method not allowed", "use POST", { allow: "POST" });
      }
      return await handleJobs(request, { ...ctx.jobs, metrics: ctx.metrics });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return error(
        405,
        "method not allowed",
        `${request.method} is not supported here`,
        {
          allow: "GET, HEAD",
        },
      );
    }
    if (raw.length > 3 || url.pathname.includes("//")) {
      return error(404, "not found", "no such path");
    }
    switch (url.pathname) {
      case "/":
        return jsonResponse(200, {
          name: "phase",
          version: ctx.version,
          channel: ctx.channel,
          arch: canonicalArch(ctx.arch),
          peer_id: ctx.key.peerId,
          uptime_seconds: ctx.metrics.uptimeSeconds(),
        });
      case "/health": {
        const h = await health();
        return jsonResponse(h.status === "ok" ? 200 : 503, h);
      }
      case "/status":
        return jsonResponse(200, {
          name: "phase",
          version: ctx.version,
          peer_id: ctx.key.peerId,
          channel: ctx.channel,
          arch: canonicalArch(ctx.arch),
          uptime_seconds: ctx.metrics.uptimeSeconds(),
          health: await health(),
          metrics: ctx.metrics.toJSON(),
        });
      case "/metrics": {
        const h = await health();
        return new Response(ctx.metrics.toPrometheus(h.status === "ok"), {
          headers: {
            "content-type": "text/plain; version=0.0.4; charset=utf-8",
          },
        });
      }
      case "/boot.ipxe": {
        const published = await ctx.publisher.current(ctx.channel, ctx.arch);
        const base = `${url.protocol}//${url.host}`;
        const script = published &&
          ipxeScript({
            baseUrl: base,
            manifest: published.manifest,
            pubkeys: ctx.pinnedKeys ??
              published.manifest.signatures.map((s) => s.key_id),
          });
        if (!script) {
          return error(
            404,
            "not found",
            `no kernel and initramfs for ${ctx.channel}/${
              canonicalArch(ctx.arch)
            }`,
          );
        }
        return new Response(request.method === "HEAD" ? null : script, {
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      }
      case "/manifest.json":
        return await manifest(request, ctx.channel, ctx.arch);
    }
    const parts = raw.map(segment);
    if (parts.some((p) => p === null)) {
      return error(400, "bad request", "path segments must be plain names");
    }
    if (parts.length !== 3) return error(404, "not found", "no such path");
    const [channel, arch, name] = parts as string[];
    if (name === MANIFEST_FILE) return await manifest(request, channel, arch);
    const file = await artifact(channel, arch, name);
    if (!file) {
      return error(404, "not found", `no artifact ${channel}/${arch}/${name}`);
    }
    if (request.method === "GET") {
      Metrics.bump(
        ctx.metrics.downloads,
        `${channel}/${canonicalArch(arch)}/${name}`,
      );
    }
    const response = await fileResponse(
      request,
      file,
      (n) => ctx.metrics.bytesServed += n,
    );
    if (file.bytes && response.status === 200) {
      preparedBodies.set(response, {
        bytes: file.bytes,
        download: `${channel}/${canonicalArch(arch)}/${name}`,
      });
    }
    return response;
  }

  async function handle(request: Request): Promise<Response> {
    let response: Response;
    try {
      response = await route(request);
    } catch (cause) {
      response = error(
        500,
        "internal error",
        String((cause as Error)?.message ?? cause).split("\n")[0],
      );
    }
    ctx.metrics.response(response.status);
    if (response.status === 200 && request.method === "GET") {
      remember(request, response);
    }
    return response;
  }

  /**
   * Plain GETs of small files and manifests are answered from prepared
   * responses (a map lookup, no parsing), trusted for RESOLVE_TTL_MS.
   */
  const prepared = new Map<string, PreparedResponse>();

  function remember(request: Request, response: Response): void {
    const body = preparedBodies.get(response);
    if (!body) return;
    if (prepared.size > 4096) prepared.clear();
    prepared.set(rawPath(request.url), {
      at: performance.now(),
      body: body.bytes,
      headers: Object.fromEntries(response.headers),
      download: body.download,
    });
  }

  return (request: Request): Promise<Response> | Response => {
    if (request.method === "GET") {
      const hit = prepared.get(rawPath(request.url));
      if (
        hit && performance.now() - hit.at < RESOLVE_TTL_MS &&
        !request.headers.has("range") &&
        !request.headers.has("if-none-match") &&
        !request.headers.has("if-modified-since")
      ) {
        ctx.metrics.response(200);
        ctx.metrics.bytesServed += hit.body.length;
        if (hit.download) Metrics.bump(ctx.metrics.downloads, hit.download);
        return new Response(hit.body as Uint8Array<ArrayBuffer>, {
          headers: hit.headers,
        });
      }
    }
    return handle(request);
  };
}

/** A response kept for the fast path. */
interface PreparedResponse {
  at: number;
  body: Uint8Array;
  headers: Record<string, string>;
  download: string | null;
}

/** Bodies of responses that may be kept for the fast path. */
const preparedBodies = new WeakMap<
  Response,
  { bytes: Uint8Array; download: string | null }
>();

/** Path and query of a request URL, as sent. */
function rawPath(url: string): string {
  return url.slice(url.indexOf("/", url.indexOf("//") + 2));
}
