/**
 * `POST /jobs`: edge-style execution. The body is either the module itself
 * (`application/wasm`, options in the query string) or JSON naming the module
 * by bytes (base64) or by the sha256 of a module this node already has. The
 * answer is the signed receipt.
 * @module
 */
import {
  isFuelBudget,
  type JobContext,
  JobRefused,
  logReceipt,
  MAX_FUEL,
  ModuleError,
  QueueFullError,
  runJob,
} from "../runner/mod.ts";
import {
  fromBase64,
  type JobManifest,
  SchemaError,
  sha256Ref,
  validateJobManifest,
} from "../schemas/mod.ts";
import type { AdmissionTicket } from "./admission.ts";
import { errorBody, jsonResponse } from "./json_response.ts";
import { Metrics } from "./metrics.ts";
import { BodyError, readBodyCapped } from "./request_body.ts";

/** Limits for jobs submitted over HTTP. */
export interface JobLimits {
  /** Largest request body in bytes (413 beyond). */
  maxBodyBytes: number;
  /** Largest memory_mb a job may ask for. */
  maxMemoryMb: number;
  /** Largest timeout_seconds a job may ask for. */
  maxTimeoutSeconds: number;
  /** Milliseconds the request body may take to arrive (default 60 s). */
  bodyTimeoutMs?: number;
}

/** Default HTTP job limits. */
export const DEFAULT_JOB_LIMITS: JobLimits = {
  maxBodyBytes: 16 * 1024 * 1024,
  maxMemoryMb: 512,
  maxTimeoutSeconds: 60,
};

/** What the jobs endpoint needs. */
export interface JobEndpointContext extends JobContext {
  /** Limits. */
  limits: JobLimits;
  /** Where receipts are logged, or null. */
  receiptsDir: string | null;
  /** Finds a module this node has by `sha256:<hex>`. */
  findModule: (hash: string) => Promise<Uint8Array | null>;
  /** Counters. */
  metrics: Metrics;
  /** This job's admission (see admission.ts); it runs when its turn comes. */
  ticket?: AdmissionTicket;
}

/** A 4xx answer with a reason. */
class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Job answers are compact: receipts can be large. */
function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return jsonResponse(status, body, headers, 0);
}

function number(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new BadRequest(400, `${name} must be a positive number`);
  }
  return n;
}

function decodeBase64(value: unknown, name: string): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new BadRequest(400, `${name} must be base64`);
  }
  try {
    return fromBase64(value);
  } catch {
    throw new BadRequest(400, `${name} must be base64`);
  }
}

interface ParsedJob {
  module: Uint8Array;
  manifest?: JobManifest;
  args?: string[];
  env?: Record<string, string>;
  stdin?: Uint8Array;
  memoryMb?: number;
  timeoutSeconds?: number;
  fuel?: number;
  nonce?: string;
}

function fuelBudget(value: unknown): number | undefined {
  const n = number(value, "fuel");
  if (n !== undefined && !isFuelBudget(n)) {
    throw new BadRequest(400, `fuel must be a whole number up to ${MAX_FUEL}`);
  }
  return n;
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new BadRequest(400, `${name} must be a list of strings`);
  }
  return value;
}

async function parseJson(
  body: Uint8Array,
  ctx: JobEndpointContext,
): Promise<ParsedJob> {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new BadRequest(400, "body is not JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new BadRequest(400, "body must be a JSON object");
  }
  const known = [
    "manifest",
    "module",
    "module_hash",
    "args",
    "env",
    "stdin",
    "memory_mb",
    "timeout_seconds",
    "fuel",
    "nonce",
  ];
  const unknown = Object.keys(doc).find((k) => !known.includes(k));
  if (unknown) throw new BadRequest(400, `unknown field ${unknown}`);
  const manifest = doc.manifest === undefined
    ? undefined
    : validateJobManifest(doc.manifest);
  let module = decodeBase64(doc.module, "module");
  const wanted = (doc.module_hash as string | undefined) ??
    manifest?.module_hash;
  if (!module) {
    if (typeof wanted !== "string") {
      throw new BadRequest(400, "give module (base64) or module_hash");
    }
    module = await ctx.findModule(wanted) ?? undefined;
    if (!module) throw new BadRequest(404, `this node has no module ${wanted}`);
  } else if (
    typeof doc.module_hash === "string" &&
    doc.module_hash !== await sha256Ref(module)
  ) {
    throw new BadRequest(400, "module_hash does not match the module");
  }
  const env = doc.env;
  if (
    env !== undefined &&
    (typeof env !== "object" || env === null ||
      Object.values(env).some((v) => typeof v !== "string"))
  ) {
    throw new BadRequest(400, "env must be an object of strings");
  }
  if (
    doc.nonce !== undefined &&
    (typeof doc.nonce !== "string" || !/^[0-9a-f]{16,128}$/.test(doc.nonce))
  ) {
    throw new BadRequest(400, "nonce must be 16 to 128 lowercase hex digits");
  }
  return {
    module,
    manifest,
    args: stringList(doc.args, "args"),
    env: env as Record<string, string> | undefined,
    stdin: decodeBase64(doc.stdin, "stdin"),
    memoryMb: number(doc.memory_mb, "memory_mb"),
    timeoutSeconds: number(doc.timeout_seconds, "timeout_seconds"),
    fuel: fuelBudget(doc.fuel),
    nonce: doc.nonce as string | undefined,
  };
}

function parseWasm(body: Uint8Array, url: URL): ParsedJob {
  const q = url.searchParams;
  const env: Record<string, string> = {};
  for (const item of q.getAll("env")) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new BadRequest(400, `env wants K=V, got ${item}`);
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  const nonce = q.get("nonce") ?? undefined;
  if (nonce !== undefined && !/^[0-9a-f]{16,128}$/.test(nonce)) {
    throw new BadRequest(400, "nonce must be 16 to 128 lowercase hex digits");
  }
  return {
    module: body,
    args: q.has("arg") ? q.getAll("arg") : undefined,
    env: q.has("env") ? env : undefined,
    stdin: decodeBase64(q.get("stdin") ?? undefined, "stdin"),
    memoryMb: number(q.get("memory_mb"), "memory_mb"),
    timeoutSeconds: number(q.get("timeout_seconds"), "timeout_seconds"),
    fuel: fuelBudget(q.get("fuel")),
    nonce,
  };
}

/** Handles `POST /jobs`. */
export async function handleJobs(
  request: Request,
  ctx: JobEndpointContext,
): Promise<Response> {
  try {
    const body = await readBodyCapped(request, {
      maxBytes: ctx.limits.maxBodyBytes,
      timeoutMs: ctx.limits.bodyTimeoutMs ?? 60_000,
      signal: request.signal,
    });
    ctx.ticket?.resize(body.length);
    const type = (request.headers.get("content-type") ?? "").split(";")[0]
      .trim();
    const url = new URL(request.url);
    let job: ParsedJob;
    if (type === "application/json") job = await parseJson(body, ctx);
    else if (
      type === "application/wasm" || type === "application/octet-stream"
    ) {
      job = parseWasm(body, url);
    } else {
      throw new BadRequest(
        415,
        "send application/wasm (the module) or application/json",
      );
    }
    const memoryMb = job.memoryMb ?? job.manifest?.memory_mb;
    const timeout = job.timeoutSeconds ?? job.manifest?.timeout_seconds;
    if (memoryMb !== undefined && memoryMb > ctx.limits.maxMemoryMb) {
      throw new BadRequest(
        400,
        `memory_mb exceeds this node's limit of ${ctx.limits.maxMemoryMb}`,
      );
    }
    if (timeout !== undefined && timeout > ctx.limits.maxTimeoutSeconds) {
      throw new BadRequest(
        400,
        `timeout_seconds exceeds this node's limit of ${ctx.limits.maxTimeoutSeconds}`,
      );
    }
    if (memoryMb !== undefined && !Number.isInteger(memoryMb)) {
      throw new BadRequest(400, "memory_mb must be an integer");
    }
    await ctx.ticket?.turn(request.signal);
    const { receipt } = await runJob({
      module: job.module,
      programName: "main.wasm",
      args: job.args,
      env: job.env,
      stdin: job.stdin,
      memoryMb,
      timeoutSeconds: timeout,
      fuel: job.fuel,
      manifest: job.manifest,
      nonce: job.nonce,
    }, ctx);
    Metrics.bump(ctx.metrics.jobs, receipt.execution.status);
    if (ctx.receiptsDir) await logReceipt(ctx.receiptsDir, receipt);
    return json(200, receipt);
  } catch (error) {
    if (error instanceof BadRequest || error instanceof BodyError) {
      return json(error.status, errorBody(error.status, error.message));
    }
    if (error instanceof QueueFullError) {
      return json(503, errorBody(503, error.message), { "retry-after": "1" });
    }
    if (
      error instanceof ModuleError || error instanceof SchemaError ||
      error instanceof JobRefused
    ) {
      return json(400, errorBody(400, error.message));
    }
    if (request.signal.aborted) {
      return json(400, errorBody(400, "the client left"));
    }
    throw error;
  }
}
