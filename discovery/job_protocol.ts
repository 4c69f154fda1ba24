/**
 * `/phase/job/1.0.0`, the node side: remote execution between peers
 * (docs/protocol.md); the client side is in job_client.ts.
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
import type { Connection, Stream } from "@libp2p/interface";
import { JobCancelled } from "../runner/mod.ts";
import {
  AdmissionRefused,
  type AdmissionTicket,
  JobError,
  judgeOffer,
  judgeRequest,
  type NodeServices,
} from "../node/mod.ts";
import type { PhaseNode } from "./node.ts";
import {
  FrameError,
  FrameStream,
  MAX_MESSAGE_BYTES,
  MAX_OFFER_BYTES,
} from "./framing.ts";
import { JOB_PROTOCOL } from "./job_client.ts";

/** How long a node waits for each client message. */
export const MESSAGE_TIMEOUT_MS = 30_000;
/** Room in a request for its arguments, environment and JSON. */
const REQUEST_OVERHEAD_BYTES = 1024 * 1024;

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
    // size), the seeded scratch the offer announced, and the arguments and
    // environment: it may be no larger, and the job is refused now when that
    // much is not free in the body budget. What is reserved grows with the
    // bytes that arrive: a stalled request holds what it sent, not what its
    // offer announced.
    const requestBytes = Math.min(
      MAX_MESSAGE_BYTES,
      Math.ceil((offer.module_size + jobs.limits.maxStdinBytes) * 4 / 3) +
        (offer.scratch_bytes ?? 0) + REQUEST_OVERHEAD_BYTES,
    );
    ticket = jobs.admit(
      options.client,
      Math.min(requestBytes, MAX_OFFER_BYTES),
      requestBytes,
    );
    const reservation = ticket;
    messages.limit = requestBytes;
    messages.onBuffered = (bytes) =>
      reservation.grow(Math.min(bytes, requestBytes));
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
    messages.onBuffered = null;
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
