/**
 * `POST /jobs`: edge-style execution, a thin adapter over the node layer's
 * job service. The body is either the module itself (`application/wasm`,
 * options in the query string) or JSON naming the module by bytes (base64)
 * or by the sha256 of a module this node serves; both forms are judged by
 * the same schema and checks as libp2p offers. A job slot is taken before
 * the body is read, the body streams in under its cap, and a client that
 * disconnects cancels its job. The answer is the signed receipt.
 * @module
 */
import { JobCancelled } from "../runner/mod.ts";
import { readAllCapped, type RejectReason } from "../schemas/mod.ts";
import {
  type Admission,
  JobError,
  type JobService,
  judgeHttpJob,
  queryToJobBody,
} from "../node/mod.ts";
import { jsonResponse } from "./json_response.ts";
import { Metrics } from "./metrics.ts";

/** What the jobs endpoint needs. */
export interface JobEndpointContext {
  /** The node's job service. */
  service: JobService;
  /** Largest request body in bytes (413 beyond); default the module limit plus 50%. */
  maxBodyBytes?: number;
  /** Finds a module this node serves by `sha256:<hex>`. */
  findModule: (hash: string) => Promise<Uint8Array | null>;
  /** Counters. */
  metrics: Metrics;
}

/** HTTP status of each refusal reason. */
const STATUS: Record<RejectReason, number> = {
  InvalidRequest: 400,
  InsufficientResources: 400,
  ArchMismatch: 400,
  RuntimeNotSupported: 400,
  QueueFull: 503,
  ModuleUnavailable: 404,
  Timeout: 408,
};

/** Stable `error` codes of the answers. */
const CODE: Record<number, string> = {
  400: "bad request",
  404: "not found",
  408: "request timeout",
  413: "payload too large",
  415: "unsupported media type",
  503: "busy",
};

/** Job answers are compact: receipts can be large. */
function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse(status, body, headers, 0);
}

/** A body over its cap. */
class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`body is larger than ${limit} bytes`);
  }
}

async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > limit) throw new TooLarge(limit);
  if (!request.body) return new Uint8Array();
  return await readAllCapped(request.body, limit, () => {
    throw new TooLarge(limit);
  });
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new JobError("InvalidRequest", "body is not JSON");
  }
}

/** Handles `POST /jobs`. */
export async function handleJobs(
  request: Request,
  ctx: JobEndpointContext,
): Promise<Response> {
  const service = ctx.service;
  // A base64 module inside JSON is a third larger than the module.
  const limit = ctx.maxBodyBytes ??
    Math.ceil(service.limits.maxModuleBytes * 1.5);
  const type = (request.headers.get("content-type") ?? "").split(";")[0]
    .trim().toLowerCase();
  const wasm = type === "application/wasm" ||
    type === "application/octet-stream";
  if (!wasm && type !== "application/json") {
    await request.body?.cancel();
    return json(415, {
      error: CODE[415],
      reason: "send application/wasm (the module) or application/json",
    });
  }
  let admission: Admission | undefined;
  try {
    let judged;
    let module: Uint8Array | undefined;
    if (wasm) {
      // The whole job is judged from the query before a module byte is read.
      judged = judgeHttpJob(
        queryToJobBody(new URL(request.url).searchParams),
        service.limits,
        { moduleInBody: true },
      );
      admission = service.admit();
      module = await readBody(request, service.limits.maxModuleBytes);
    } else {
      admission = service.admit();
      judged = judgeHttpJob(
        parseJson(await readBody(request, limit)),
        service.limits,
      );
      module = judged.order.module ??
        (judged.moduleHash
          ? await ctx.findModule(judged.moduleHash) ?? undefined
          : undefined);
    }
    const { order, moduleHash } = judged;
    if (!module) {
      throw new JobError(
        "ModuleUnavailable",
        `this node has no module ${moduleHash}`,
      );
    }
    const resolved = await service.resolveModule({ ...order, module }, {
      moduleHash,
    });
    const { receipt } = await service.run({ ...order, module: resolved }, {
      signal: request.signal,
    });
    Metrics.bump(ctx.metrics.jobs, receipt.execution.status);
    return json(200, receipt);
  } catch (error) {
    if (error instanceof TooLarge) {
      service.refused("InsufficientResources");
      return json(413, {
        error: CODE[413],
        reason: error.message,
      });
    }
    if (error instanceof JobError) {
      const status = STATUS[error.reason];
      return json(
        status,
        { error: CODE[status], reason: error.message },
        error.reason === "QueueFull" ? { "retry-after": "1" } : {},
      );
    }
    if (error instanceof JobCancelled) {
      return json(408, { error: CODE[408], reason: error.message });
    }
    throw error;
  } finally {
    admission?.release();
  }
}
