/**
 * Framing between the runner and its sandbox processes: each frame is
 * `u32 total length | u32 header length | JSON header | blobs`, little endian,
 * where the header lists the blob sizes in `blobs`. Both directions are
 * linear: a frame is written as its parts (no joined copy) and read into one
 * buffer allocated at its announced size (each byte copied once).
 * @module
 */

/** A decoded frame. */
export interface Frame {
  /** The JSON header (without the `blobs` size list). */
  header: Record<string, unknown>;
  /** The binary attachments, in order (views into one buffer). */
  blobs: Uint8Array[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Largest frame either side accepts (a module plus stdin, with room). */
export const MAX_FRAME_BYTES = 1024 * 1024 * 1024;

/** A frame as the pieces to write in order: length prefix and header, then the blobs. */
export function frameParts(
  header: Record<string, unknown>,
  blobs: Uint8Array[] = [],
): Uint8Array[] {
  const json = encoder.encode(
    JSON.stringify({ ...header, blobs: blobs.map((b) => b.length) }),
  );
  const total = 4 + json.length + blobs.reduce((n, b) => n + b.length, 0);
  if (total > MAX_FRAME_BYTES) throw new Error("frame too large");
  const head = new Uint8Array(8 + json.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, total, true);
  view.setUint32(4, json.length, true);
  head.set(json, 8);
  return [head, ...blobs];
}

/** Encodes a frame into one buffer. */
export function encodeFrame(
  header: Record<string, unknown>,
  blobs: Uint8Array[] = [],
): Uint8Array {
  const parts = frameParts(header, blobs);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function decodeBody(body: Uint8Array): Frame {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const jsonLength = view.getUint32(0, true);
  if (4 + jsonLength > body.length) throw new Error("frame header too long");
  const { blobs: sizes, ...header } = JSON.parse(
    decoder.decode(body.subarray(4, 4 + jsonLength)),
  ) as { blobs: number[] } & Record<string, unknown>;
  const blobs: Uint8Array[] = [];
  let at = 4 + jsonLength;
  for (const size of sizes) {
    if (at + size > body.length) throw new Error("frame blobs too long");
    blobs.push(body.subarray(at, at + size));
    at += size;
  }
  return { header, blobs };
}

/** Reads frames from a byte stream until it ends. */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Frame> {
  const prefix = new Uint8Array(4);
  let prefixFilled = 0;
  let body: Uint8Array | null = null;
  let filled = 0;
  for await (const chunk of stream) {
    let at = 0;
    while (at < chunk.length) {
      if (body === null) {
        const n = Math.min(4 - prefixFilled, chunk.length - at);
        prefix.set(chunk.subarray(at, at + n), prefixFilled);
        prefixFilled += n;
        at += n;
        if (prefixFilled < 4) break;
        const total = new DataView(prefix.buffer).getUint32(0, true);
        if (total > MAX_FRAME_BYTES || total < 4) {
          throw new Error("bad frame length");
        }
        body = new Uint8Array(total);
        filled = 0;
        continue;
      }
      const n = Math.min(body.length - filled, chunk.length - at);
      body.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === body.length) {
        const frame = decodeBody(body);
        body = null;
        prefixFilled = 0;
        yield frame;
      }
    }
  }
}
