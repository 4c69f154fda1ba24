/**
 * The frame codec of Phase's stream protocols: each message is an unsigned
 * LEB128 varint length (minimal, at most 4 bytes) followed by that many bytes
 * of UTF-8 JSON. The reader holds at most its current limit (plus a prefix)
 * of unread bytes, whatever the peer sends: a node reads an offer under a
 * small limit and raises it to {@link MAX_MESSAGE_BYTES} only for the request
 * of a job it admitted, so a stranger cannot make it buffer megabytes before
 * admission; while that request arrives, the node reserves memory for the
 * bytes actually buffered (see `onBuffered`). A length above the limit ends
 * the stream.
 * @module
 */
import type { Stream } from "@libp2p/interface";

/**
 * Largest message either side accepts: a 16 MiB module in base64 (21.4 MiB)
 * with its input, or a receipt with 1 MiB of output per stream.
 */
export const MAX_MESSAGE_BYTES = 24 * 1024 * 1024;
/** Largest offer (and any message before admission): 64 KiB. */
export const MAX_OFFER_BYTES = 64 * 1024;
/** Longest length prefix: 4 bytes of LEB128 hold up to 2^28 − 1. */
const MAX_PREFIX_BYTES = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A message that breaks the framing rules; the stream is ended. */
export class FrameError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Encodes a length as minimal unsigned LEB128. */
export function encodeLength(length: number): Uint8Array {
  const out: number[] = [];
  let n = length;
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Uint8Array.from(out);
}

/**
 * Reads the length prefix at the start of `bytes`: `null` while incomplete,
 * else the length and the prefix size. Throws {@link FrameError} for a
 * prefix longer than 4 bytes or not minimal.
 */
export function decodeLength(
  bytes: Uint8Array,
): { length: number; size: number } | null {
  let length = 0;
  for (let i = 0; i < Math.min(bytes.length, MAX_PREFIX_BYTES); i++) {
    length += (bytes[i] & 0x7f) * 2 ** (7 * i);
    if ((bytes[i] & 0x80) === 0) {
      if (i > 0 && bytes[i] === 0) {
        throw new FrameError("the length prefix is not minimal");
      }
      return { length, size: i + 1 };
    }
  }
  if (bytes.length >= MAX_PREFIX_BYTES) {
    throw new FrameError("the length prefix is longer than 4 bytes");
  }
  return null;
}

/** A stream carrying Phase's framed JSON messages. */
export class FrameStream {
  readonly #stream: Stream;
  #limit: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  /**
   * Hears how many bytes are buffered whenever more arrive; may throw to
   * refuse them (the stream is then read no further, see {@link onBuffered}).
   */
  #onBuffered: ((bytes: number) => void) | null = null;

  /** Frames `stream`; messages longer than `limit` end it. */
  constructor(stream: Stream, limit: number = MAX_MESSAGE_BYTES) {
    this.#stream = stream;
    this.#limit = limit;
    stream.addEventListener("message", (event) => {
      if (this.#failure) return;
      const data = event.data instanceof Uint8Array
        ? event.data
        : event.data.subarray();
      this.#chunks.push(data);
      this.#buffered += data.length;
      if (this.#buffered > this.#limit + MAX_PREFIX_BYTES) {
        // Never throw here: an exception in a stream listener is uncaught.
        this.#abort(
          new FrameError(
            `the peer sent more than ${this.#limit} bytes unasked`,
          ),
        );
        return;
      }
      try {
        this.#onBuffered?.(this.#buffered);
      } catch (error) {
        // Refused: what was buffered is dropped and reads fail with the
        // error; the stream stays open for the answer.
        this.#failure = error as Error;
        this.#chunks = [];
        this.#buffered = 0;
      }
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    stream.addEventListener("remoteCloseWrite", end);
    stream.addEventListener("close", end);
  }

  /** Sets the largest message (and unread bytes) accepted from now on. */
  set limit(bytes: number) {
    this.#limit = bytes;
  }

  /**
   * Sets what hears the number of buffered bytes each time more arrive
   * (e.g. to reserve memory for them as they come); when it throws, the
   * buffered bytes are dropped, later ones ignored, and reads fail with
   * what it threw. `null` stops it.
   */
  set onBuffered(hook: ((bytes: number) => void) | null) {
    this.#onBuffered = hook;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** Ends the stream and drops what it buffered; reads then fail with `error`. */
  #abort(error: Error): void {
    this.#failure = error;
    this.#chunks = [];
    this.#buffered = 0;
    this.#stream.abort(error);
    this.#notify();
  }

  #fail(error: Error): never {
    this.#abort(error);
    throw error;
  }

  /** The first `count` buffered bytes, joined (without consuming them). */
  #peek(count: number): Uint8Array {
    if (this.#chunks[0]?.length >= count) {
      return this.#chunks[0].subarray(0, count);
    }
    const out = new Uint8Array(count);
    let at = 0;
    for (const chunk of this.#chunks) {
      const take = Math.min(chunk.length, count - at);
      out.set(chunk.subarray(0, take), at);
      at += take;
      if (at === count) break;
    }
    return out;
  }

  #consume(count: number): void {
    this.#buffered -= count;
    while (count > 0) {
      const first = this.#chunks[0];
      if (first.length <= count) {
        this.#chunks.shift();
        count -= first.length;
      } else {
        this.#chunks[0] = first.subarray(count);
        count = 0;
      }
    }
  }

  /** Reads the next message's bytes; throws at the end of the stream. */
  async read(signal: AbortSignal): Promise<Uint8Array> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      let prefix: { length: number; size: number } | null = null;
      try {
        prefix = this.#buffered > 0
          ? decodeLength(
            this.#peek(Math.min(this.#buffered, MAX_PREFIX_BYTES)),
          )
          : null;
      } catch (error) {
        this.#fail(error as Error);
      }
      if (prefix && prefix.length > this.#limit) {
        this.#fail(
          new FrameError(
            `a message of ${prefix.length} bytes is over the limit of ${this.#limit}`,
          ),
        );
      }
      if (prefix && this.#buffered >= prefix.size + prefix.length) {
        const message = this.#peek(prefix.size + prefix.length)
          .slice(prefix.size);
        this.#consume(prefix.size + prefix.length);
        return message;
      }
      if (this.#ended) {
        throw new FrameError("the stream ended before a whole message");
      }
      signal.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
    }
  }

  /** Reads the next message and parses its JSON; bad JSON is a FrameError. */
  async receive(signal: AbortSignal): Promise<unknown> {
    const bytes = await this.read(signal);
    try {
      return JSON.parse(decoder.decode(bytes));
    } catch {
      throw new FrameError("the message is not UTF-8 JSON");
    }
  }

  /** Sends one JSON message; refuses one the peer would refuse for its size. */
  async send(message: unknown, signal?: AbortSignal): Promise<void> {
    const body = encoder.encode(JSON.stringify(message));
    if (body.length > MAX_MESSAGE_BYTES) {
      throw new FrameError(
        `the message is ${body.length} bytes, the limit is ${MAX_MESSAGE_BYTES}`,
      );
    }
    const prefix = encodeLength(body.length);
    const frame = new Uint8Array(prefix.length + body.length);
    frame.set(prefix);
    frame.set(body, prefix.length);
    if (!this.#stream.send(frame)) await this.#stream.onDrain({ signal });
  }
}
