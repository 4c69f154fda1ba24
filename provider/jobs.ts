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
import type { RejectReason } from "../schemas/mod.ts";
import {
  AdmissionRefused,
  type AdmissionTicket,
  JobError,
  type JobService,
  judgeHttpJob,
  queryToJobBody,
} from "../node/mod.ts";
import { errorBody, jsonResponse } from "./json_response.ts";
import type { Metrics } from "./metrics.ts";
import {
  BodyError,
  checkDeclaredLength,
  readBodyCapped,
} from "./request_body.ts";

/** What the jobs endpoint needs. */
export interface JobEndpointContext {
  /** The node's job service. */
  service: JobService;
  /** Finds a module this node serves by `sha256:<hex>`. */
  findModule: (hash: string) => Promise<Uint8Array | null>;
  /** Counters. */
  metrics: Metrics;
}

/** How long a job's body may take to arrive. */
const BODY_TIMEOUT_MS = 60_000;

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

/** Job answers are compact: receipts can be large. */
function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse(status, body, headers, 0);
}

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new JobError("InvalidRequest", "body is not JSON");
  }
}

/** The refusal an error answers with, for the counters; null for none. */
function refusalReason(error: unknown): RejectReason | null {
  if (error instanceof JobError) return error.reason;
  if (error instanceof AdmissionRefused) return "QueueFull";
  if (error instanceof BodyError) {
    return error.status === 413
      ? "InsufficientResources"
      : error.status === 408
      ? "Timeout"
      : "InvalidRequest";
  }
  return null;
}

/** Handles `POST /jobs` from `client` (its address). */
export async function handleJobs(
  request: Request,
  ctx: JobEndpointContext,
  client: string,
): Promise<Response> {
  const service = ctx.service;
  const type = (request.headers.get("content-type") ?? "").split(";")[0]
    .trim().toLowerCase();
  const wasm = type === "application/wasm" ||
    type === "application/octet-stream";
  if (!wasm && type !== "application/json") {
    return json(
      415,
      errorBody(415, "send application/wasm (the module) or application/json"),
      { connection: "close" },
    );
  }
  // A content-coding (gzip, br, ...) would make the cap count compressed
  // bytes and hand the judge something else than the module: refused.
  const coding = (request.headers.get("content-encoding") ?? "").trim()
    .toLowerCase();
  if (coding !== "" && coding !== "identity") {
    return json(
      415,
      errorBody(
        415,
        `Content-Encoding ${
          coding.slice(0, 64)
        } is not accepted; send the body uncompressed`,
      ),
      { connection: "close" },
    );
  }
  // A base64 module inside JSON is a third larger than the module.
  const maxBytes = wasm
    ? service.limits.maxModuleBytes
    : Math.ceil(service.limits.maxModuleBytes * 1.5);
  let ticket: AdmissionTicket | undefined;
  try {
    // Before any body byte is read: the query (for a module body), the
    // declared length, then a place among the admitted jobs.
    const query = wasm
      ? judgeHttpJob(
        queryToJobBody(new URL(request.url).searchParams),
        service.limits,
        { moduleInBody: true },
      )
      : null;
    checkDeclaredLength(request, maxBytes);
    // The reservation starts small and grows with the bytes that arrive:
    // a stalled upload holds what it sent, not what it announced.
    const declared = Number(request.headers.get("content-length") ?? NaN);
    const announced = Number.isSafeInteger(declared) ? declared : 0;
    ticket = service.admit(
      client,
      Math.min(announced || maxBytes, 64 * 1024),
      announced,
    );
    const reservation = ticket;
    const body = await readBodyCapped(request, {
      maxBytes,
      timeoutMs: BODY_TIMEOUT_MS,
      signal: request.signal,
      onBytes: (received) => reservation.grow(received),
    });
    ticket.resize(body.length);
    const judged = query ?? judgeHttpJob(parseJson(body), service.limits);
    const { order, moduleHash } = judged;
    const module = wasm ? body : order.module ??
      (moduleHash ? await ctx.findModule(moduleHash) : null);
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
      ticket,
    });
    return json(200, receipt);
  } catch (error) {
    const reason = refusalReason(error);
    if (reason) service.refused(reason);
    if (error instanceof BodyError) {
      return json(error.status, errorBody(error.status, error.message), {
        connection: "close",
      });
    }
    if (error instanceof AdmissionRefused) {
      return json(error.status, errorBody(error.status, error.message), {
        "retry-after": "1",
        connection: "close",
      });
    }
    if (error instanceof JobError) {
      const status = STATUS[error.reason];
      return json(
        status,
        // The protocol's reason too, so clients can tell refusals apart.
        { ...errorBody(status, error.message), refusal: error.reason },
        error.reason === "QueueFull" ? { "retry-after": "1" } : {},
      );
    }
    if (error instanceof JobCancelled) {
      return json(400, errorBody(400, "the client left"));
    }
    throw error;
  } finally {
    ticket?.release();
  }
}
