/**
 * `/phase/job/1.0.0`: remote execution between peers.
 *
 * On one stream, length-prefixed JSON messages: the client sends a JobOffer;
 * the node answers Accepted or Rejected (InsufficientResources, ArchMismatch,
 * RuntimeNotSupported, QueueFull, InvalidRequest); the client sends a
 * JobRequest (module bytes, or a URL to fetch them from, with args and
 * stdin); the node answers a JobResult with the signed receipt. The client
 * checks the receipt: signature, signer = the peer it talked to, module and
 * input hashes, nonce, and that the unsigned result fields agree with it.
 * @module
 */
import { lpStream } from "@libp2p/utils";
import { peerIdFromString } from "@libp2p/peer-id";
import type { Connection, Stream } from "@libp2p/interface";
import {
  fromBase64,
  inputHash,
  randomHex,
  type Receipt,
  sha256Ref,
  toBase64,
  verifyReceipt,
} from "../schemas/mod.ts";
import {
  isFuelBudget,
  type JobContext,
  JobRefused,
  logReceipt,
  ModuleError,
  QueueFullError,
  runJob,
  RUNTIME_VERSION,
} from "../runner/mod.ts";
import type { Capability, PhaseNode } from "./node.ts";
import { WASM_RUNTIME } from "./node.ts";

/** The protocol id. */
export const JOB_PROTOCOL = "/phase/job/1.0.0";
/** Largest message either side accepts. */
export const MAX_MESSAGE_BYTES = 24 * 1024 * 1024;

/** Why a node refuses a job. */
export type RejectReason =
  | "InsufficientResources"
  | "ArchMismatch"
  | "RuntimeNotSupported"
  | "QueueFull"
  | "InvalidRequest";

/** What a job needs from a node. */
export interface Requirements {
  /** CPU cores. */
  cpu_cores: number;
  /** Memory cap in MiB. */
  memory_mb: number;
  /** Wall-clock limit in seconds. */
  timeout_seconds: number;
  /** Fuel budget, or null. */
  fuel: number | null;
  /** Architecture, or "any" (WASM is portable). */
  arch: string;
  /** Runtime, e.g. `wasi-preview1`. */
  wasm_runtime: string;
}

/** A job refused by a node (or found invalid by the client). */
export class JobRejected extends Error {
  /** Creates the error. */
  constructor(
    readonly reason: RejectReason | "Tampered" | "Unreachable",
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = "JobRejected";
  }
}

/** What a node accepting jobs needs. */
export interface JobServerContext extends JobContext {
  /** The node's capability (arch, cores, memory, limits). */
  capability: () => Capability;
  /** Where receipts are logged, or null. */
  receiptsDir: string | null;
  /** Waiting time for each client message (default 30 s). */
  messageTimeoutMs?: number;
}

/** Modules recently received, by sha256, so repeat jobs need not resend them. */
class ModuleCache {
  #entries = new Map<string, Uint8Array>();
  #bytes = 0;
  constructor(readonly limit = 64 * 1024 * 1024) {}
  get(hash: string): Uint8Array | undefined {
    const hit = this.#entries.get(hash);
    if (hit) {
      this.#entries.delete(hash);
      this.#entries.set(hash, hit);
    }
    return hit;
  }
  set(hash: string, module: Uint8Array): void {
    if (this.#entries.has(hash) || module.length > this.limit) return;
    this.#entries.set(hash, module);
    this.#bytes += module.length;
    for (const [key, value] of this.#entries) {
      if (this.#bytes <= this.limit) break;
      this.#entries.delete(key);
      this.#bytes -= value.length;
    }
  }
}

const modules = new ModuleCache();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function send(
  lp: ReturnType<typeof lpStream>,
  message: unknown,
  signal?: AbortSignal,
) {
  await lp.write(encoder.encode(JSON.stringify(message)), { signal });
}

async function receive(
  lp: ReturnType<typeof lpStream>,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const bytes = await lp.read({ signal });
  const parsed = JSON.parse(decoder.decode(bytes.subarray()));
  if (typeof parsed !== "object" || parsed === null) {
    throw new Error("message is not an object");
  }
  return parsed;
}

function majorOf(version: string): string {
  return version.split(".")[0];
}

/** Checks an offer against a capability; returns a rejection or null. */
export function judgeOffer(
  offer: Record<string, unknown>,
  capability: Capability,
  queued: number,
): { reason: RejectReason; detail: string } | null {
  const r = offer.requirements as Partial<Requirements> | undefined;
  if (
    typeof offer.job_id !== "string" || typeof offer.nonce !== "string" ||
    !/^[0-9a-f]{16,128}$/.test(offer.nonce) ||
    typeof offer.module_hash !== "string" ||
    !/^sha256:[0-9a-f]{64}$/.test(offer.module_hash) ||
    !r || typeof r !== "object" ||
    (r.fuel != null && !isFuelBudget(r.fuel))
  ) {
    return { reason: "InvalidRequest", detail: "offer is malformed" };
  }
  if (r.arch && r.arch !== "any" && r.arch !== capability.arch) {
    return {
      reason: "ArchMismatch",
      detail: `this node is ${capability.arch}, the job wants ${r.arch}`,
    };
  }
  const [runtime, version] = String(r.wasm_runtime ?? WASM_RUNTIME).split("@");
  if (
    runtime !== WASM_RUNTIME ||
    (version && majorOf(version) !== majorOf(capability.runtime.version))
  ) {
    return {
      reason: "RuntimeNotSupported",
      detail: `this node runs ${WASM_RUNTIME}@${capability.runtime.version}`,
    };
  }
  if (
    (r.memory_mb ?? 0) > capability.memory_mb ||
    (r.cpu_cores ?? 1) > capability.cpu_cores ||
    (r.timeout_seconds ?? 0) > capability.limits.max_timeout_seconds
  ) {
    return {
      reason: "InsufficientResources",
      detail: "the job asks for more than this node offers",
    };
  }
  if (queued >= capability.load.queue_limit) {
    return { reason: "QueueFull", detail: `${queued} jobs are waiting` };
  }
  return null;
}

async function fetchModule(url: string, limit: number): Promise<Uint8Array> {
  const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.length > limit) {
    throw new Error(`module at ${url} is larger than ${limit} bytes`);
  }
  return bytes;
}

/** Handles one inbound job stream. */
export async function serveJobStream(
  stream: Stream,
  ctx: JobServerContext,
): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES });
  const timeout = () => AbortSignal.timeout(ctx.messageTimeoutMs ?? 30_000);
  let jobId: unknown = null;
  const reject = (reason: RejectReason, detail: string) =>
    send(lp, { type: "rejected", job_id: jobId, reason, detail });
  try {
    const offer = await receive(lp, timeout());
    jobId = offer.job_id;
    if (offer.type !== "offer") {
      return await reject("InvalidRequest", "expected an offer");
    }
    const capability = ctx.capability();
    const verdict = judgeOffer(offer, capability, ctx.sandbox.queued);
    if (verdict) return await reject(verdict.reason, verdict.detail);
    const cached = modules.get(offer.module_hash as string);
    await send(lp, {
      type: "accepted",
      job_id: jobId,
      estimated_start: new Date().toISOString(),
      node_peer_id: ctx.key.peerId,
      module_cached: cached !== undefined,
    });
    const request = await receive(lp, timeout());
    if (request.type !== "request" || request.job_id !== jobId) {
      return await reject("InvalidRequest", "expected the job request");
    }
    let module: Uint8Array;
    if (typeof request.module === "string") module = fromBase64(request.module);
    else if (cached) module = cached;
    else if (typeof request.module_url === "string") {
      module = await fetchModule(
        request.module_url,
        capability.limits.max_module_bytes,
      );
    } else return await reject("InvalidRequest", "the request has no module");
    if (await sha256Ref(module) !== offer.module_hash) {
      return await reject(
        "InvalidRequest",
        "module does not match the offered module_hash",
      );
    }
    modules.set(offer.module_hash as string, module);
    const requirements = offer.requirements as Requirements;
    const args = request.args ?? [];
    const env = request.env ?? {};
    if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
      return await reject("InvalidRequest", "args must be strings");
    }
    const { receipt, outcome } = await runJob({
      module,
      args: args as string[],
      env: env as Record<string, string>,
      stdin: typeof request.stdin === "string"
        ? fromBase64(request.stdin)
        : new Uint8Array(),
      memoryMb: requirements.memory_mb || undefined,
      timeoutSeconds: requirements.timeout_seconds || undefined,
      fuel: requirements.fuel ?? undefined,
      nonce: offer.nonce as string,
      jobId: String(jobId),
    }, ctx);
    if (ctx.receiptsDir) await logReceipt(ctx.receiptsDir, receipt);
    await send(lp, {
      type: "result",
      job_id: jobId,
      stdout: receipt.stdout,
      stderr: receipt.stderr,
      exit_code: outcome.exitCode,
      receipt,
    });
  } catch (error) {
    const reason: RejectReason = error instanceof QueueFullError
      ? "QueueFull"
      : "InvalidRequest";
    const detail =
      error instanceof ModuleError || error instanceof JobRefused ||
        error instanceof QueueFullError
        ? error.message
        : `request failed: ${(error as Error).message?.split("\n")[0]}`;
    await reject(reason, detail).catch(() => {});
  } finally {
    await stream.close().catch(() => stream.abort(new Error("closing")));
  }
}

/** Registers the job protocol on a node. */
export async function acceptJobs(
  node: PhaseNode,
  ctx: JobServerContext,
): Promise<void> {
  await node.libp2p.handle(
    JOB_PROTOCOL,
    (stream: Stream, _connection: Connection) => {
      serveJobStream(stream, ctx).catch(() => {});
    },
    { maxInboundStreams: 256 },
  );
}

/** A job for {@link submitJob}. */
export interface RemoteJob {
  /** Module bytes. */
  module: Uint8Array;
  /** Arguments. */
  args?: string[];
  /** Environment. */
  env?: Record<string, string>;
  /** Standard input. */
  stdin?: Uint8Array;
  /** Requirements (defaults: 1 core, 128 MiB, 30 s, any arch). */
  requirements?: Partial<Requirements>;
  /** Overall timeout in ms (default: job timeout + 30 s). */
  timeoutMs?: number;
}

/** A verified remote result. */
export interface RemoteResult {
  /** The peer that ran the job. */
  peerId: string;
  /** The verified receipt. */
  receipt: Receipt;
  /** Raw result fields. */
  stdout: string;
  /** Raw result fields. */
  stderr: string;
  /** Exit code. */
  exitCode: number | null;
}

/**
 * Offers a job to one peer, sends it when accepted and verifies the result.
 * Throws {@link JobRejected} when the peer refuses or the result fails a check.
 */
export async function submitJob(
  node: PhaseNode,
  peerId: string,
  job: RemoteJob,
): Promise<RemoteResult> {
  const requirements: Requirements = {
    cpu_cores: 1,
    memory_mb: 128,
    timeout_seconds: 30,
    fuel: null,
    arch: "any",
    wasm_runtime: `${WASM_RUNTIME}@${RUNTIME_VERSION}`,
    ...job.requirements,
  };
  const signal = AbortSignal.timeout(
    job.timeoutMs ?? requirements.timeout_seconds * 1000 + 30_000,
  );
  const moduleHash = await sha256Ref(job.module);
  const jobId = crypto.randomUUID();
  const nonce = randomHex(16);
  const args = job.args ?? [];
  const env = job.env ?? {};
  const stdin = job.stdin ?? new Uint8Array();
  let stream: Stream;
  try {
    stream = await node.libp2p.dialProtocol(
      peerIdFromString(peerId),
      JOB_PROTOCOL,
      { signal },
    );
  } catch (error) {
    throw new JobRejected(
      "Unreachable",
      `cannot open a job stream to ${peerId}: ${
        (error as Error).message.split("\n")[0]
      }`,
    );
  }
  const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES });
  try {
    await send(lp, {
      type: "offer",
      job_id: jobId,
      nonce,
      module_hash: moduleHash,
      requirements,
    }, signal);
    const answer = await receive(lp, signal);
    if (answer.type === "rejected") {
      throw new JobRejected(
        answer.reason as RejectReason,
        String(answer.detail),
      );
    }
    if (answer.type !== "accepted" || answer.job_id !== jobId) {
      throw new JobRejected(
        "InvalidRequest",
        "the node did not accept the offer",
      );
    }
    await send(lp, {
      type: "request",
      job_id: jobId,
      module: answer.module_cached === true ? null : toBase64(job.module),
      args,
      env,
      stdin: toBase64(stdin),
    }, signal);
    const result = await receive(lp, signal);
    if (result.type === "rejected") {
      throw new JobRejected(
        result.reason as RejectReason,
        String(result.detail),
      );
    }
    if (result.type !== "result" || result.job_id !== jobId) {
      throw new JobRejected("Tampered", "the node sent no result for this job");
    }
    const verdict = await verifyReceipt(result.receipt, {
      peerId,
      moduleHash,
      inputHash: await inputHash({ args, env, stdin }),
      nonce,
    });
    if (!verdict.valid) {
      throw new JobRejected("Tampered", `receipt rejected: ${verdict.reason}`);
    }
    const receipt = verdict.receipt;
    if (
      result.stdout !== receipt.stdout || result.stderr !== receipt.stderr ||
      result.exit_code !== receipt.execution.exit_code ||
      receipt.job_id !== jobId
    ) {
      throw new JobRejected(
        "Tampered",
        "the result differs from its signed receipt",
      );
    }
    return {
      peerId,
      receipt,
      stdout: receipt.stdout,
      stderr: receipt.stderr,
      exitCode: receipt.execution.exit_code,
    };
  } finally {
    await stream.close().catch(() => stream.abort(new Error("closing")));
  }
}

/** Tries capable nodes in turn until one runs the job. */
export async function submitAuto(
  node: PhaseNode,
  job: RemoteJob,
  options: {
    arch?: string;
    timeoutMs?: number;
    onSkip?: (peerId: string, reason: string) => void;
  } = {},
): Promise<RemoteResult> {
  const memory = job.requirements?.memory_mb ?? 128;
  const candidates = await node.findCapable({
    arch: options.arch,
    accept: (c) => c.memory_mb >= memory,
  }, options.timeoutMs ?? 5000);
  if (candidates.length === 0) {
    throw new JobRejected("Unreachable", "no capable node was found");
  }
  const reasons: string[] = [];
  for (const candidate of candidates) {
    if (candidate.peerId === node.peerId) continue;
    try {
      await node.remember(candidate.peerId, candidate.addresses);
      return await submitJob(node, candidate.peerId, job);
    } catch (error) {
      if (!(error instanceof JobRejected)) throw error;
      reasons.push(`${candidate.peerId}: ${error.message}`);
      options.onSkip?.(candidate.peerId, error.message);
    }
  }
  throw new JobRejected(
    "Unreachable",
    `every capable node refused: ${reasons.join("; ")}`,
  );
}
