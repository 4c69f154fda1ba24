/**
 * `/phase/job/1.0.0`: remote execution between peers (docs/protocol.md).
 *
 * On one stream, length-prefixed JSON messages (unsigned varint length, then
 * that many bytes of UTF-8 JSON, at most {@link MAX_MESSAGE_BYTES}): the
 * client sends an offer; the node judges it completely and answers accepted
 * or rejected; the client sends the request (module bytes, or a URL, and the
 * input); the node answers a result with the signed receipt, or rejected.
 * Every message is checked against its schema in schemas/. The node side is
 * a thin adapter over the node layer's job service; the client checks the
 * receipt: signature, signer = the peer it talked to, module and input
 * hashes, nonce and job id.
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { Connection, Stream } from "@libp2p/interface";
import {
  inputHash,
  randomHex,
  type Receipt,
  type RejectReason,
  type Requirements,
  type SchemaError,
  sha256Ref,
  toBase64,
  validateDocument,
  verifyReceipt,
} from "../schemas/mod.ts";
import { JobCancelled, RUNTIME_VERSION } from "../runner/mod.ts";
import {
  AdmissionRefused,
  type AdmissionTicket,
  JobError,
  judgeOffer,
  judgeRequest,
  type NodeServices,
} from "../node/mod.ts";
import type { FoundNode, PhaseNode } from "./node.ts";
import { PROBE_TIMEOUT_MS } from "./capability_protocol.ts";
import { WASM_RUNTIME } from "./node.ts";
import {
  FrameError,
  FrameStream,
  MAX_MESSAGE_BYTES,
  MAX_OFFER_BYTES,
} from "./framing.ts";

/** The protocol id. */
export const JOB_PROTOCOL = "/phase/job/1.0.0";
/** How long a node waits for each client message. */
export const MESSAGE_TIMEOUT_MS = 30_000;
/**
 * How long a client waits for a node to open a job stream and accept or
 * refuse its offer before it moves on to another node.
 */
export const OFFER_TIMEOUT_MS = 5000;
/** How many lookups {@link submitAuto} runs before it gives up. */
export const SUBMIT_LOOKUPS = 3;
/** A lookup of {@link submitAuto} ends once this many nodes have answered. */
const SUBMIT_CANDIDATES = 8;
/** Pause between two lookups of {@link submitAuto}. */
const LOOKUP_PAUSE_MS = 500;
/** Room in a request for its arguments, environment and JSON. */
const REQUEST_OVERHEAD_BYTES = 1024 * 1024;

/** A job refused by a node, or a node that failed the client's checks. */
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

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(
    0,
    512,
  );
}

/** Handles one inbound job stream for a node, from the peer `client`. */
export async function serveJobStream(
  stream: Stream,
  node: NodeServices,
  options: { client: string; messageTimeoutMs?: number },
): Promise<void> {
  const jobs = node.jobs;
  // Until a job is admitted, nothing larger than an offer is buffered.
  const messages = new FrameStream(stream, MAX_OFFER_BYTES);
  const timeout = () =>
    AbortSignal.timeout(options.messageTimeoutMs ?? MESSAGE_TIMEOUT_MS);
  // The client going away (reset, closed connection) cancels its job.
  const gone = new AbortController();
  const onClose = () => gone.abort();
  stream.addEventListener("close", onClose);
  let jobId: string | null = null;
  let ticket: AdmissionTicket | undefined;
  try {
    const capability = node.capability();
    if (!jobs || !capability) {
      throw new JobError("RuntimeNotSupported", "this node runs no jobs");
    }
    const message = await messages.receive(timeout());
    // Echo a well-formed job_id even when the rest of the offer is refused.
    const claimed = (message as { job_id?: unknown })?.job_id;
    if (
      typeof claimed === "string" && /^[A-Za-z0-9._-]{1,128}$/.test(claimed)
    ) {
      jobId = claimed;
    }
    const offer = judgeOffer(message, capability, jobs.limits);
    jobId = offer.job_id;
    // The request may carry the module and stdin in base64 (4/3 of their
    // size) and the arguments and environment: that is reserved from the
    // body budget, and the request may be no larger.
    const requestBytes = Math.min(
      MAX_MESSAGE_BYTES,
      Math.ceil((offer.module_size + jobs.limits.maxStdinBytes) * 4 / 3) +
        REQUEST_OVERHEAD_BYTES,
    );
    ticket = jobs.admit(options.client, requestBytes);
    messages.limit = requestBytes;
    await messages.send({
      type: "accepted",
      job_id: jobId,
      estimated_start: new Date().toISOString(),
      node_peer_id: node.key.peerId,
      module_cached: jobs.hasModule(offer.module_hash),
    });
    const { order, moduleUrl } = judgeRequest(
      await messages.receive(timeout()),
      offer,
      jobs.limits,
    );
    messages.limit = MAX_OFFER_BYTES;
    const module = await jobs.resolveModule(order, {
      moduleHash: offer.module_hash,
      moduleUrl,
    });
    const { receipt } = await jobs.run({ ...order, module }, {
      signal: gone.signal,
      ticket,
    });
    // The place is free once the job has run, whether or not the client
    // reads its result, which it must do within the message timeout.
    ticket.release();
    await messages.send(
      { type: "result", job_id: jobId, receipt },
      AbortSignal.any([gone.signal, timeout()]),
    );
  } catch (error) {
    if (!(error instanceof JobCancelled) && !gone.signal.aborted) {
      const refusal = error instanceof JobError
        ? error
        : error instanceof AdmissionRefused
        ? new JobError("QueueFull", error.message)
        : error instanceof DOMException && error.name === "TimeoutError"
        ? new JobError("Timeout", "the client was too slow")
        : error instanceof FrameError
        ? new JobError("InvalidRequest", error.message)
        // Anything else is the node's own failure: say so without details.
        : new JobError("InvalidRequest", "the node could not run the job");
      jobs?.refused(refusal.reason);
      await messages.send({
        type: "rejected",
        job_id: jobId,
        reason: refusal.reason,
        detail: refusal.message.slice(0, 1024),
      }).catch(() => {});
    }
  } finally {
    ticket?.release();
    stream.removeEventListener("close", onClose);
    await stream.close().catch(() => stream.abort(new Error("closing")));
  }
}

/** Registers the job protocol for a node. */
export async function acceptJobs(
  libp2p: PhaseNode,
  node: NodeServices,
  options: { messageTimeoutMs?: number } = {},
): Promise<void> {
  await libp2p.libp2p.handle(
    JOB_PROTOCOL,
    (stream: Stream, connection: Connection) => {
      serveJobStream(stream, node, {
        ...options,
        client: connection.remotePeer.toString(),
      }).catch(() => {});
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
  requirements?: Requirements;
  /** Overall timeout in ms (default: job timeout + 30 s). */
  timeoutMs?: number;
}

/** A verified remote result. */
export interface RemoteResult {
  /** The peer that ran the job. */
  peerId: string;
  /** The verified receipt. */
  receipt: Receipt;
  /** Standard output as recorded in the receipt. */
  stdout: string;
  /** Standard error as recorded in the receipt. */
  stderr: string;
  /** Exit code. */
  exitCode: number | null;
}

/** Parses a node's answer against the schema of the type it claims. */
function answer(message: unknown): Record<string, unknown> {
  const type = (message as { type?: unknown })?.type;
  const kind = type === "accepted"
    ? "accepted message"
    : type === "rejected"
    ? "rejected message"
    : type === "result"
    ? "result message"
    : null;
  if (!kind) {
    throw new JobRejected("Tampered", "the node sent an unknown message");
  }
  try {
    return validateDocument(kind, message);
  } catch (error) {
    throw new JobRejected("Tampered", (error as SchemaError).message);
  }
}

function refusal(message: Record<string, unknown>): JobRejected {
  return new JobRejected(
    message.reason as RejectReason,
    String(message.detail),
  );
}

/**
 * Offers a job to one peer, sends it when accepted and verifies the result.
 * Throws {@link JobRejected} when the peer refuses or the result fails a check.
 */
export async function submitJob(
  node: PhaseNode,
  peerId: string,
  job: RemoteJob,
  options: {
    /** Wait this long for the stream and the offer's answer (default 5 s). */
    offerTimeoutMs?: number;
  } = {},
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
    job.timeoutMs ?? (requirements.timeout_seconds ?? 30) * 1000 + 30_000,
  );
  const moduleHash = await sha256Ref(job.module);
  const jobId = crypto.randomUUID();
  const nonce = randomHex(16);
  const args = job.args ?? [];
  const env = job.env ?? {};
  const stdin = job.stdin ?? new Uint8Array();
  // A node that is gone or stalls before answering the offer costs the
  // client at most the offer timeout; the timer stops once it has answered
  // (libp2p may keep the dial's signal for the stream's life).
  const offerTimer = new AbortController();
  const offerTimeout = setTimeout(
    () =>
      offerTimer.abort(
        new DOMException("the node did not answer the offer", "TimeoutError"),
      ),
    options.offerTimeoutMs ?? OFFER_TIMEOUT_MS,
  );
  const offerSignal = AbortSignal.any([signal, offerTimer.signal]);
  let stream: Stream;
  try {
    stream = await node.libp2p.dialProtocol(
      peerIdFromString(peerId),
      JOB_PROTOCOL,
      { signal: offerSignal },
    );
  } catch (error) {
    clearTimeout(offerTimeout);
    throw new JobRejected(
      offerTimer.signal.aborted ? "Timeout" : "Unreachable",
      `cannot open a job stream to ${peerId}: ${firstLine(error)}`,
    );
  }
  const messages = new FrameStream(stream);
  try {
    await messages.send({
      type: "offer",
      job_id: jobId,
      nonce,
      module_hash: moduleHash,
      module_size: job.module.length,
      requirements,
    }, offerSignal);
    const accepted = answer(await messages.receive(offerSignal));
    clearTimeout(offerTimeout);
    if (accepted.type === "rejected") throw refusal(accepted);
    if (accepted.type !== "accepted" || accepted.job_id !== jobId) {
      throw new JobRejected("Tampered", "the node did not accept this offer");
    }
    await messages.send({
      type: "request",
      job_id: jobId,
      module: accepted.module_cached === true ? null : toBase64(job.module),
      args,
      env,
      stdin: toBase64(stdin),
    }, signal);
    const result = answer(await messages.receive(signal));
    if (result.type === "rejected") throw refusal(result);
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
    if (receipt.job_id !== jobId) {
      throw new JobRejected("Tampered", "the receipt names another job");
    }
    return {
      peerId,
      receipt,
      stdout: receipt.stdout,
      stderr: receipt.stderr,
      exitCode: receipt.execution.exit_code,
    };
  } catch (error) {
    if (error instanceof JobRejected) throw error;
    throw new JobRejected(
      offerSignal.aborted ? "Timeout" : "Unreachable",
      `${peerId}: ${firstLine(error)}`,
    );
  } finally {
    clearTimeout(offerTimeout);
    await stream.close().catch(() => stream.abort(new Error("closing")));
  }
}

/** One try of {@link submitAuto}. */
export interface Attempt {
  /** The node tried. */
  peerId: string;
  /** Why it did not run the job. */
  reason: string;
}

/**
 * Tries capable nodes in turn, least loaded first (in random order among
 * equals, so that clients spread), until one returns a verified receipt. Any
 * failure (unreachable, reset, no answer to the offer within
 * {@link OFFER_TIMEOUT_MS}, refusal, bad receipt) moves on to the next node;
 * when every node found has failed, or none answered, it looks up again (at
 * most {@link SUBMIT_LOOKUPS} lookups), leaving out the nodes already tried
 * and doubling, each time, how long nodes have to answer and the lookup's
 * timeout.
 * `onAttempt` hears each failed try.
 */
export async function submitAuto(
  node: PhaseNode,
  job: RemoteJob,
  options: {
    arch?: string;
    timeoutMs?: number;
    offerTimeoutMs?: number;
    onAttempt?: (attempt: Attempt) => void;
    onWarning?: (line: string) => void;
  } = {},
): Promise<RemoteResult> {
  const memory = job.requirements?.memory_mb ?? 128;
  const attempts: Attempt[] = [];
  const tried = new Set<string>();
  for (let lookup = 0; lookup < SUBMIT_LOOKUPS; lookup++) {
    if (lookup > 0) await new Promise((r) => setTimeout(r, LOOKUP_PAUSE_MS));
    // Each further lookup gives nodes twice as long to answer (a busy
    // machine), and itself twice as long.
    const patience = 2 ** lookup;
    const candidates = await node.findCapable({
      arch: options.arch,
      accept: (c) => c.memory_mb >= memory,
      onWarning: options.onWarning,
      exclude: tried,
      limit: SUBMIT_CANDIDATES,
      probeTimeoutMs: PROBE_TIMEOUT_MS * patience,
    }, (options.timeoutMs ?? 5000) * patience);
    for (const candidate of spread(candidates)) {
      tried.add(candidate.peerId);
      try {
        return await submitJob(node, candidate.peerId, job, {
          offerTimeoutMs: options.offerTimeoutMs,
        });
      } catch (error) {
        const attempt = {
          peerId: candidate.peerId,
          reason: firstLine(error),
        };
        attempts.push(attempt);
        options.onAttempt?.(attempt);
      }
    }
  }
  if (attempts.length === 0) {
    throw new JobRejected("Unreachable", "no capable node was found");
  }
  throw new JobRejected(
    "Unreachable",
    `all ${attempts.length} capable nodes failed: ${
      attempts.map((a) => `${a.peerId} (${a.reason})`).join("; ")
    }`.slice(0, 4096),
  );
}

/** Nodes least queued first, in random order among equals. */
function spread(nodes: FoundNode[]): FoundNode[] {
  return nodes
    .map((n) => ({ n, r: Math.random() }))
    .sort((a, b) =>
      a.n.capability.load.queued - b.n.capability.load.queued || a.r - b.r
    )
    .map(({ n }) => n);
}
