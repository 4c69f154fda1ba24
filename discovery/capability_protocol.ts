/**
 * `/phase/capability/1.0.0`: a node's current capability, read from the node
 * itself (docs/protocol.md). The client opens a stream; the node answers one
 * length-prefixed message, its capability record freshly signed (the same
 * record it publishes in the DHT, with its current load), and closes.
 *
 * Lookups use it to re-validate every node the DHT names: a node is listed
 * only if it answered during the lookup, so a node that left (or crashed
 * without a goodbye) is never listed however long its entries linger in the
 * DHT, and a node that does not answer within {@link PROBE_TIMEOUT_MS} costs
 * a lookup no more than that.
 * @module
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { Stream } from "@libp2p/interface";
import type { Capability } from "../schemas/mod.ts";
import { FrameStream } from "./framing.ts";
import {
  capabilityKey,
  decodeRecord,
  encodeRecord,
  MAX_RECORD_BYTES,
  RecordError,
  type SignedRecord,
} from "./records.ts";
import type { PhaseNode } from "./node.ts";

/** The protocol id. */
export const CAPABILITY_PROTOCOL = "/phase/capability/1.0.0";
/** How long a lookup waits for one node to answer (dial included). */
export const PROBE_TIMEOUT_MS = 1500;
/** A node re-signs its answer at most this often (its load may change). */
const RESIGN_AFTER_MS = 1000;

/**
 * Answers capability reads for a node: `sign` returns its current signed
 * capability record (null when it runs no jobs any more).
 */
export async function answerCapability(
  node: PhaseNode,
  sign: () => Promise<SignedRecord | null>,
): Promise<void> {
  let cached: { at: number; record: Promise<SignedRecord | null> } | null =
    null;
  const current = () => {
    if (!cached || performance.now() - cached.at > RESIGN_AFTER_MS) {
      cached = { at: performance.now(), record: sign().catch(() => null) };
    }
    return cached.record;
  };
  await node.libp2p.handle(CAPABILITY_PROTOCOL, async (stream: Stream) => {
    try {
      const record = await current();
      if (record) {
        await new FrameStream(stream, 0).send(
          record,
          AbortSignal.timeout(PROBE_TIMEOUT_MS),
        );
      }
      await stream.close();
    } catch {
      stream.abort(new Error("capability answer failed"));
    }
  }, { maxInboundStreams: 32 });
}

/**
 * Reads `peerId`'s capability from the node itself and checks it (signed by
 * that peer, under its key, unexpired, valid payload). Throws with a one-line
 * reason when the node cannot be reached in time or its answer is refused.
 */
export async function readCapability(
  node: PhaseNode,
  peerId: string,
  addresses: string[],
  signal: AbortSignal,
): Promise<SignedRecord<Capability>> {
  await node.remember(peerId, addresses);
  const message = await readAnswer(
    node,
    peerId,
    CAPABILITY_PROTOCOL,
    MAX_RECORD_BYTES,
    signal,
  );
  let bytes: Uint8Array;
  try {
    bytes = encodeRecord(message as SignedRecord);
  } catch {
    throw new RecordError("the node's answer is not a record");
  }
  return await decodeRecord(capabilityKey(peerId), bytes) as SignedRecord<
    Capability
  >;
}

/**
 * Opens `protocol` to `peerId`, sends nothing, and reads the one framed
 * message the peer answers (at most `limit` bytes); the stream is closed
 * after. The message is unchecked: the caller judges it.
 */
export async function readAnswer(
  node: PhaseNode,
  peerId: string,
  protocol: string,
  limit: number,
  signal: AbortSignal,
): Promise<unknown> {
  const stream = await node.libp2p.dialProtocol(
    peerIdFromString(peerId),
    protocol,
    { signal },
  );
  try {
    return await new FrameStream(stream, limit).receive(signal);
  } finally {
    await stream.close().catch(() => stream.abort(new Error("closing")));
  }
}
