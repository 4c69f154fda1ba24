/**
 * The provider's HTTP surface as a `Request -> Response` handler. Routing
 * uses the request target only (never Host); a Host header that is present
 * must be valid (else 400). Every error has the shape of json_response.ts.
 * @module
 */
import { statfs } from "node:fs/promises";
import {
  canonicalArch,
  type Channel,
  type NodeKey,
  sha256Hex,
} from "../schemas/mod.ts";
import {
  type ArtifactStore,
  CHANNELS,
  currentIdentity,
  MANIFEST_FILE,
  readAfterChange,
} from "./artifacts.ts";
import {
  type CountOptions,
  fileResponse,
  type ServedFile,
} from "./file_response.ts";
import { ipxeScript } from "./ipxe.ts";
import { handleJobs, type JobEndpointContext } from "./jobs.ts";
import { jsonError, jsonResponse } from "./json_response.ts";
import {
  InvalidManifestError,
  type ManifestPublisher,
} from "./manifest_publisher.ts";
import { Metrics } from "./metrics.ts";
import { renderStatusPage, type StatusDocument } from "./status_page.ts";
import { requestTarget, targetPath, validHost } from "./request_target.ts";

/** Files up to this size are kept in memory once read. */
const SMALL_FILE = 64 * 1024;
/** How long a resolved artifact path is trusted before it is looked up again. */
const RESOLVE_TTL_MS = 1000;
/**
 * How long a prepared small file's identity check is reused: a replaced
 * file stops being served from memory within this time.
 */
const RECHECK_MS = 50;
/** Architectures whose offline manifests /health checks. */
const ARCHES = ["x86_64", "aarch64"];

/**
 * Cache-Control of artifacts and manifests: caches may keep them but must
 * revalidate every use (a 304 costs one round trip). Artifact URLs are
 * names, not hashes, so a cache must never hand a booting machine a kernel
 * that no longer matches the current manifest.
 */
export const CACHE_CONTROL = "no-cache";

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
  /** Base URLs this provider is reached at; /boot.ipxe uses the first (else Host). */
  advertise?: string[];
  /** libp2p peers connected now, when the node runs libp2p. */
  peers?: () => number | null;
}

/** Health as /health and /status report it. */
export interface Health {
  /** `ok` or `unhealthy`. */
  status: "ok" | "unhealthy";
  /** The artifacts directory can be listed. */
  artifacts_readable: boolean;
  /** Every offline-signed manifest.json can be served. */
  manifests_valid: boolean;
  /** Free space in the data directory is above the minimum. */
  disk_space_ok: boolean;
  /** Free bytes in the data directory, when known. */
  disk_free_bytes: number | null;
  /** Why it is unhealthy. */
  reason: string | null;
}

/**
 * The handler: the listener passes connection info and a callback to call
 * as a streamed body is taken by the client; in-process callers may not.
 */
export type ProviderHandler = (
  request: Request,
  info?: Deno.ServeHandlerInfo<Deno.NetAddr>,
  progress?: () => void,
) => Response | Promise<Response>;

/** An artifact as served: its bytes' identity and whether it may be reused. */
interface Artifact extends ServedFile {
  /** The file identity the hash (and bytes) belong to. */
  identity: string;
  /** False while the file changed too recently to reuse what was read. */
  settled: boolean;
}

/** A response kept for the fast path. */
interface PreparedResponse {
  /** When it was prepared. */
  at: number;
  /** Cloned for each answer (much cheaper than building a response). */
  response: Response;
  /** Body length. */
  length: number;
  /** Counts the body as served (one callback shared by every answer). */
  sent: () => void;
  /** The artifact it counts as a download of, if any. */
  download: string | null;
  /** The file and identity the body came from (null for manifests). */
  file: { path: string; identity: string; checkedAt: number } | null;
}

/** True when a request has a header that makes its answer depend on more than the path. */
function conditional(headers: Headers): boolean {
  return headers.has("range") || headers.has("if-none-match") ||
    headers.has("if-modified-since") || headers.has("if-match") ||
    headers.has("if-unmodified-since");
}

function noop(): void {}

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
  if (decoded === "." || decoded === ".." || /[/\\\0]/.test(decoded)) {
    return null;
  }
  return decoded;
}

function outOfDescriptors(error: unknown): boolean {
  return (error as { code?: string })?.code === "EMFILE" ||
    /too many open files/i.test(String((error as Error)?.message));
}

/** Builds the handler. */
export function createHandler(ctx: ProviderContext): ProviderHandler {
  const resolved = new Map<string, { at: number; file: Artifact | null }>();
  const prepared = new Map<string, PreparedResponse>();
  /** Bodies of responses that may be kept for the fast path. */
  const preparedBodies = new WeakMap<
    Response,
    {
      body: Uint8Array;
      download: string | null;
      file: { path: string; identity: string } | null;
    }
  >();

  const counter = (
    info?: Deno.ServeHandlerInfo,
    progress?: () => void,
  ): CountOptions => ({
    written: progress
      ? (n) => {
        ctx.metrics.bytesServed += n;
        progress();
      }
      : (n) => ctx.metrics.bytesServed += n,
    completed: info?.completed,
    // Only the listener passes `progress`: the body goes to the engine.
    engine: progress !== undefined,
  });

  async function artifact(
    channel: string,
    arch: string,
    name: string,
  ): Promise<Artifact | null> {
    const key = `${channel}/${arch}/${name}`;
    const hit = resolved.get(key);
    const previous = hit?.file;
    if (
      hit && performance.now() - hit.at < RESOLVE_TTL_MS &&
      (previous === null ||
        (previous!.settled &&
          currentIdentity(previous!.path) === previous!.identity))
    ) {
      return previous!;
    }
    const found = await ctx.store.resolve(channel, arch, name);
    let file: Artifact | null = null;
    if (found && previous?.identity === found.identity && previous.settled) {
      file = previous;
    } else if (found && found.size <= SMALL_FILE) {
      // Bytes and hash from one read, so they always agree.
      const started = Date.now();
      const bytes = await Deno.readFile(found.path);
      file = {
        ...found,
        size: bytes.length,
        sha256: await sha256Hex(bytes),
        contentType: contentType(name),
        bytes,
        settled: currentIdentity(found.path) === found.identity &&
          readAfterChange(found, started),
      };
    } else if (found) {
      file = {
        ...found,
        sha256: await ctx.store.hash(found),
        contentType: contentType(name),
        settled: ctx.store.settled(found),
      };
    }
    if (resolved.size > 4096) resolved.clear();
    resolved.set(key, { at: performance.now(), file });
    return file;
  }

  async function manifestProblems(): Promise<string[]> {
    const problems: string[] = [];
    for (const channel of CHANNELS) {
      for (const arch of ARCHES) {
        try {
          await ctx.publisher.current(channel, arch);
        } catch (error) {
          if (error instanceof InvalidManifestError) {
            problems.push(error.message);
          }
        }
      }
    }
    return problems;
  }

  /** What /status says, as JSON or as the page for people. */
  async function statusDocument(): Promise<StatusDocument & { name: string }> {
    const files = await ctx.store.list(ctx.channel, ctx.arch).catch(() => []);
    const arch = canonicalArch(ctx.arch) ?? ctx.arch;
    const artifacts = await Promise.all(
      files.filter((f) => f.name !== MANIFEST_FILE).map(async (f) => ({
        name: f.name,
        size: f.size,
        sha256: await ctx.store.hash(f),
        downloads:
          ctx.metrics.downloads.get(`${ctx.channel}/${arch}/${f.name}`) ??
            0,
      })),
    );
    const published = await ctx.publisher.current(ctx.channel, ctx.arch)
      .catch(() => null);
    const receipts = await ctx.jobs?.service.receipts?.recent(10) ?? [];
    return {
      name: "phase",
      version: ctx.version,
      peer_id: ctx.key.peerId,
      channel: ctx.channel,
      arch,
      uptime_seconds: ctx.metrics.uptimeSeconds(),
      health: await health(),
      artifacts,
      manifest: published
        ? {
          manifest_version: published.manifest.manifest_version,
          expires_at: published.manifest.expires_at,
          valid: Date.parse(published.manifest.expires_at) > Date.now(),
          signers: published.manifest.signatures.map((s) => s.key_id),
        }
        : null,
      peers: ctx.peers?.() ?? null,
      metrics: ctx.metrics.toJSON() as StatusDocument["metrics"],
      recent_receipts: receipts,
    };
  }

  async function statusPage(): Promise<Response> {
    return new Response(renderStatusPage(await statusDocument()), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        // Nothing on the page loads from anywhere, itself included.
        "content-security-policy":
          "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
        vary: "accept",
      },
    });
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
    const manifests = readable ? await manifestProblems() : [];
    const reasons = [
      readable ? null : `artifacts directory ${ctx.store.root} is not readable`,
      diskOk
        ? null
        : `disk full: ${free} bytes free in ${ctx.dataDir}, need ${ctx.minFreeBytes}`,
      ...manifests,
    ].filter((r) => r !== null);
    return {
      status: reasons.length ? "unhealthy" : "ok",
      artifacts_readable: readable,
      manifests_valid: manifests.length === 0,
      disk_space_ok: diskOk,
      disk_free_bytes: free,
      reason: reasons.length ? reasons.join("; ") : null,
    };
  }

  async function manifest(
    request: Request,
    channel: string,
    arch: string,
    count: CountOptions,
  ): Promise<Response> {
    if (!CHANNELS.includes(channel as Channel) || !canonicalArch(arch)) {
      return jsonError(404, `no channel/arch ${channel}/${arch}`);
    }
    let published;
    try {
      published = await ctx.publisher.current(channel as Channel, arch);
    } catch (error) {
      if (error instanceof InvalidManifestError) {
        return jsonError(503, error.message);
      }
      throw error;
    }
    if (!published) {
      return jsonError(
        404,
        `no artifacts for ${channel}/${canonicalArch(arch)}`,
      );
    }
    const response = fileResponse(
      request,
      {
        path: "",
        size: published.bytes.length,
        mtime: null,
        sha256: published.etag.slice(1, -1),
        contentType: "application/json",
        bytes: published.bytes,
      },
      count,
      { "cache-control": CACHE_CONTROL },
    );
    preparedBodies.set(response, {
      body: published.bytes,
      download: null,
      file: null,
    });
    return response;
  }

  function bootScript(request: Request): Response | Promise<Response> {
    const host = request.headers.get("host");
    const base = ctx.advertise?.[0]?.replace(/\/+$/, "") ??
      (host === null ? null : `http://${host}`);
    if (base === null) {
      return jsonError(
        400,
        "send a Host header, or start the provider with --advertise",
      );
    }
    return ctx.publisher.current(ctx.channel, ctx.arch).then((published) => {
      const script = published &&
        ipxeScript({
          baseUrl: base,
          manifest: published.manifest,
          pubkeys: ctx.pinnedKeys ??
            published.manifest.signatures.map((s) => s.key_id),
        });
      if (!script) {
        return jsonError(
          404,
          `no kernel and initramfs for ${ctx.channel}/${
            canonicalArch(ctx.arch)
          }`,
        );
      }
      return new Response(request.method === "HEAD" ? null : script, {
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "cache-control": CACHE_CONTROL,
          // The script names this provider by the Host it was asked with.
          ...(ctx.advertise?.length ? {} : { vary: "host" }),
        },
      });
    });
  }

  async function jobs(
    request: Request,
    info?: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    if (!ctx.jobs) return jsonError(404, "this provider does not run jobs");
    if (request.method !== "POST") {
      return jsonError(405, "use POST", { allow: "POST" });
    }
    return await handleJobs(
      request,
      { ...ctx.jobs, metrics: ctx.metrics },
      info?.remoteAddr.hostname ?? "local",
    );
  }

  async function route(
    request: Request,
    path: string,
    count: CountOptions,
    info?: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    if (path === "/jobs") return await jobs(request, info);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return jsonError(405, `${request.method} is not supported here`, {
        allow: "GET, HEAD",
      });
    }
    const wantsPage = (request.headers.get("accept") ?? "").includes(
      "text/html",
    );
    switch (path) {
      case "/":
        if (wantsPage) return statusPage();
        return jsonResponse(200, {
          name: "phase",
          version: ctx.version,
          channel: ctx.channel,
          arch: canonicalArch(ctx.arch),
          peer_id: ctx.key.peerId,
          uptime_seconds: ctx.metrics.uptimeSeconds(),
        }, { vary: "accept" });
      case "/health": {
        const h = await health();
        return jsonResponse(h.status === "ok" ? 200 : 503, h);
      }
      case "/status":
        if (wantsPage) return statusPage();
        return jsonResponse(200, await statusDocument(), { vary: "accept" });
      case "/metrics": {
        const h = await health();
        return new Response(ctx.metrics.toPrometheus(h.status === "ok"), {
          headers: {
            "content-type": "text/plain; version=0.0.4; charset=utf-8",
          },
        });
      }
      case "/boot.ipxe":
        return await bootScript(request);
      case "/manifest.json":
        return await manifest(request, ctx.channel, ctx.arch, count);
    }
    const parts = path.split("/").slice(1).map(segment);
    if (parts.some((p) => p === null)) {
      return jsonError(400, "path segments must be plain names");
    }
    if (parts.length !== 3 || parts.includes("")) {
      return jsonError(404, `no such path ${path}`);
    }
    const [channel, arch, name] = parts as string[];
    if (name === MANIFEST_FILE) {
      return await manifest(request, channel, arch, count);
    }
    const file = await artifact(channel, arch, name);
    if (!file) {
      return jsonError(404, `no artifact ${channel}/${arch}/${name}`);
    }
    const download = `${channel}/${canonicalArch(arch)}/${name}`;
    if (request.method === "GET") Metrics.bump(ctx.metrics.downloads, download);
    const response = fileResponse(request, file, count, {
      "x-artifact-hash": `sha256:${file.sha256}`,
      "cache-control": CACHE_CONTROL,
    });
    if (file.bytes && file.settled) {
      preparedBodies.set(response, {
        body: file.bytes,
        download,
        file: { path: file.path, identity: file.identity },
      });
    }
    return response;
  }

  async function handle(
    request: Request,
    path: string,
    info?: Deno.ServeHandlerInfo<Deno.NetAddr>,
    progress?: () => void,
  ): Promise<Response> {
    let response: Response;
    try {
      response = await route(request, path, counter(info, progress), info);
    } catch (cause) {
      response = outOfDescriptors(cause)
        ? jsonError(503, "out of file descriptors; retry shortly", {
          "retry-after": "1",
        })
        : jsonError(
          500,
          String((cause as Error)?.message ?? cause).split("\n")[0],
        );
    }
    ctx.metrics.response(response.status);
    const kept = preparedBodies.get(response);
    if (kept && response.status === 200 && request.method === "GET") {
      if (prepared.size > 4096) prepared.clear();
      const now = performance.now();
      prepared.set(path, {
        at: now,
        response: new Response(kept.body as Uint8Array<ArrayBuffer>, {
          headers: response.headers,
        }),
        length: kept.body.length,
        sent: () => ctx.metrics.bytesServed += kept.body.length,
        download: kept.download,
        file: kept.file && { ...kept.file, checkedAt: now },
      });
    }
    return response;
  }

  /** True when a prepared file's bytes are still the file's. */
  function unchanged(file: NonNullable<PreparedResponse["file"]>): boolean {
    const now = performance.now();
    if (now - file.checkedAt < RECHECK_MS) return true;
    if (currentIdentity(file.path) !== file.identity) return false;
    file.checkedAt = now;
    return true;
  }

  /**
   * Plain GETs of small files and manifests are answered from prepared
   * responses (a map lookup and, for files, a stat at most every
   * RECHECK_MS to check the bytes are still the file's), trusted for
   * RESOLVE_TTL_MS.
   */
  /** The last Host value found valid (clients repeat theirs). */
  let validated: string | null = null;
  return (request, info, progress) => {
    const headers = request.headers;
    const host = headers.get("host");
    if (host !== null && host !== validated) {
      if (!validHost(host)) {
        ctx.metrics.response(400);
        return jsonError(400, "invalid Host header");
      }
      validated = host;
    }
    const path = targetPath(requestTarget(request, host));
    if (request.method === "GET") {
      const hit = prepared.get(path);
      if (
        hit && performance.now() - hit.at < RESOLVE_TTL_MS &&
        !conditional(headers) &&
        (hit.file === null || unchanged(hit.file))
      ) {
        ctx.metrics.response(200);
        if (info) info.completed.then(hit.sent, noop);
        else hit.sent();
        if (hit.download) Metrics.bump(ctx.metrics.downloads, hit.download);
        return hit.response.clone();
      }
    }
    return handle(request, path, info, progress);
  };
}
