/**
 * Framing between the runner and its sandbox processes: each frame is
 * `u32 total length | u32 header length | JSON header | blobs`, little endian,
 * where the header lists the blob sizes in `blobs`.
 * @module
 */

/** A decoded frame. */
export interface Frame {
  /** The JSON header (without the `blobs` size list). */
  header: Record<string, unknown>;
  /** The binary attachments, in order. */
  blobs: Uint8Array[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Largest frame either side accepts (a module plus stdin, with room). */
export const MAX_FRAME_BYTES = 512 * 1024 * 1024;

/** Encodes a frame. */
export function encodeFrame(
  header: Record<string, unknown>,
  blobs: Uint8Array[] = [],
): Uint8Array {
  const json = encoder.encode(
    JSON.stringify({ ...header, blobs: blobs.map((b) => b.length) }),
  );
  const total = 4 + json.length + blobs.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(4 + total);
  const view = new DataView(out.buffer);
  view.setUint32(0, total, true);
  view.setUint32(4, json.length, true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const blob of blobs) {
    out.set(blob, at);
    at += blob.length;
  }
  return out;
}

function decodeBody(body: Uint8Array): Frame {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const jsonLength = view.getUint32(0, true);
  const { blobs: sizes, ...header } = JSON.parse(
    decoder.decode(body.subarray(4, 4 + jsonLength)),
  ) as { blobs: number[] } & Record<string, unknown>;
  const blobs: Uint8Array[] = [];
  let at = 4 + jsonLength;
  for (const size of sizes) {
    blobs.push(body.subarray(at, at + size));
    at += size;
  }
  return { header, blobs };
}

/** Reads frames from a byte stream until it ends. */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Frame> {
  let buffer = new Uint8Array(0);
  for await (const chunk of stream) {
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    buffer = joined;
    while (buffer.length >= 4) {
      const total = new DataView(buffer.buffer, buffer.byteOffset).getUint32(
        0,
        true,
      );
      if (total > MAX_FRAME_BYTES) throw new Error("frame too large");
      if (buffer.length < 4 + total) break;
      yield decodeBody(buffer.slice(4, 4 + total));
      buffer = buffer.subarray(4 + total);
    }
  }
}
