/**
 * The client side of `/phase/job/1.0.0` (docs/protocol.md): offer a job to
 * one peer, send it when accepted, and accept the result only when its
 * receipt passes every check (schema, signature under the key inside
 * `node_peer_id`, signer = the peer dialled, module and input hashes, nonce
 * and job id). It loads nothing of the node layer, so clients outside a node
 * (the SDK under Node, `phase submit`) use it alone.
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { Stream } from "@libp2p/interface";
import {
  fromBase64,
  inputHash,
  randomHex,
  type Receipt,
  type RejectReason,
  type Requirements,
  type SchemaError,
  type ScratchSeed,
  seedDigest,
  sha256Ref,
  toBase64,
  validateDocument,
  verifyReceipt,
} from "../schemas/mod.ts";
// The runtime version alone: the client never loads the runner.
import { RUNTIME_VERSION } from "../runner/version.ts";
import type { FoundNode, PhaseNode } from "./node.ts";
import { PROBE_TIMEOUT_MS } from "./capability_protocol.ts";
import { WASM_RUNTIME } from "./node.ts";
import { FrameStream } from "./framing.ts";

/** The protocol id. */
export const JOB_PROTOCOL = "/phase/job/1.0.0";
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

/** The first line of an error's message, at most 512 characters. */
export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0].slice(
    0,
    512,
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
  /** A seeded scratch directory (announced in the offer by its size). */
  scratch?: ScratchSeed;
  /** Requirements (defaults: 1 core, 128 MiB, 30 s, any arch). */
  requirements?: Requirements;
  /** Overall timeout in ms (default: job timeout + 30 s). */
  timeoutMs?: number;
  /** The job id (default: a random UUID). */
  jobId?: string;
  /** The nonce the receipt must carry (default: 16 random bytes in hex). */
  nonce?: string;
  /** Ends the job early (the stream is reset, which cancels it on the node). */
  signal?: AbortSignal;
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
  const deadline = AbortSignal.timeout(
    job.timeoutMs ?? (requirements.timeout_seconds ?? 30) * 1000 + 30_000,
  );
  const signal = job.signal
    ? AbortSignal.any([deadline, job.signal])
    : deadline;
  const moduleHash = await sha256Ref(job.module);
  const jobId = job.jobId ?? crypto.randomUUID();
  const nonce = job.nonce ?? randomHex(16);
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
      ...(job.scratch
        ? {
          scratch_bytes: new TextEncoder().encode(JSON.stringify(job.scratch))
            .length,
        }
        : {}),
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
      ...(job.scratch ? { scratch: job.scratch } : {}),
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
      jobId,
    });
    if (!verdict.valid) {
      throw new JobRejected("Tampered", `receipt rejected: ${verdict.reason}`);
    }
    const receipt = verdict.receipt;
    // A seeded scratch: the receipt must name the seed that was sent.
    if (job.scratch) {
      const ran = receipt.limits.preopens?.find((p) =>
        p.access === "scratch" && p.guest === job.scratch!.path
      );
      if (ran?.seed_sha256 !== await scratchDigest(job.scratch)) {
        throw new JobRejected(
          "Tampered",
          "the receipt does not name the scratch seed that was sent",
        );
      }
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
      deadline.aborted || offerTimer.signal.aborted ? "Timeout" : "Unreachable",
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
 * timeout. `onAttempt` hears each failed try.
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

/** The receipt's digest of a seeded scratch as a request carries it. */
function scratchDigest(scratch: ScratchSeed): Promise<string> {
  return seedDigest(
    scratch.entries.map((e) =>
      e.kind === "file"
        ? { path: e.path, kind: e.kind, data: fromBase64(e.data ?? "") }
        : e.kind === "symlink"
        ? { path: e.path, kind: e.kind, target: e.target }
        : { path: e.path, kind: e.kind }
    ),
  );
}
