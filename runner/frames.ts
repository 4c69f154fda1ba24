/**
 * Framing between the runner and its sandbox processes: each frame is
 * `u32 total length | u32 header length | JSON header | blobs`, little endian,
 * where the header lists the blob sizes in `blobs`. Both directions are
 * linear: a frame is written as its parts (no joined copy) and read into one
 * buffer allocated at its announced size (each byte copied once).
 * @module
 */

import { joinBytes } from "./wasm_binary.ts";

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
  return joinBytes(frameParts(header, blobs));
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

/**
 * Reads frames from a byte stream until it ends. Each frame's bytes are
 * read straight into one buffer of its announced size (a BYOB read), so a
 * large frame leaves no trail of chunks for the garbage collector.
 */
export async function* readFrames(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<Frame> {
  const reader = stream.getReader({ mode: "byob" });
  /** Fills `size` bytes; null when the stream ends first. */
  const fill = async (size: number): Promise<Uint8Array | null> => {
    let target = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const { done, value } = await reader.read(target.subarray(filled));
      if (done || !value) return null;
      filled += value.length;
      // A BYOB read hands back the buffer it filled (the old one is detached).
      target = new Uint8Array(value.buffer, 0, size);
    }
    return target;
  };
  try {
    for (;;) {
      const prefix = await fill(4);
      if (!prefix) return;
      const total = new DataView(prefix.buffer).getUint32(0, true);
      if (total > MAX_FRAME_BYTES || total < 4) {
        throw new Error("bad frame length");
      }
      const body = await fill(total);
      if (!body) return;
      yield decodeBody(body);
    }
  } finally {
    reader.releaseLock();
  }
}
