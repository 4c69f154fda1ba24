/**
 * The frame codec of Phase's stream protocols: each message is an unsigned
 * varint length (LEB128, at most 4 bytes here) followed by that many bytes of
 * UTF-8 JSON. A length above {@link MAX_MESSAGE_BYTES} ends the stream
 * before its bytes are buffered.
 * @module
 */
import { type LengthPrefixedStream, lpStream } from "@libp2p/utils";
import type { Stream } from "@libp2p/interface";
import { JobError } from "../node/mod.ts";

/**
 * Largest message either side accepts: a 16 MiB module in base64 (21.4 MiB)
 * with its input, or a receipt with 1 MiB of output per stream.
 */
export const MAX_MESSAGE_BYTES = 24 * 1024 * 1024;
/** A framed stream. */
export type Messages = LengthPrefixedStream<Stream>;

/** Frames a stream with Phase's message limit on both the length and the buffer. */
export function messageStream(stream: Stream): Messages {
  return lpStream(stream, {
    maxDataLength: MAX_MESSAGE_BYTES,
    maxBufferSize: MAX_MESSAGE_BYTES + 16,
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Sends one JSON message; refuses one the peer would refuse for its size. */
export async function sendMessage(
  messages: Messages,
  message: unknown,
  signal?: AbortSignal,
): Promise<void> {
  const bytes = encoder.encode(JSON.stringify(message));
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new JobError(
      "InvalidRequest",
      `the message is ${bytes.length} bytes, the limit is ${MAX_MESSAGE_BYTES}`,
    );
  }
  await messages.write(bytes, { signal });
}

/** Reads one message and parses its JSON; a non-JSON message is an InvalidRequest. */
export async function receiveMessage(
  messages: Messages,
  signal: AbortSignal,
): Promise<unknown> {
  const bytes = await messages.read({ signal });
  try {
    return JSON.parse(decoder.decode(bytes.subarray()));
  } catch {
    throw new JobError("InvalidRequest", "the message is not UTF-8 JSON");
  }
}
