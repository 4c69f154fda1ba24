/**
 * Reading a request body without trusting the client: refused before a byte
 * is read when its declared length is over the cap, streamed (never more
 * than the cap held), and given up when it takes too long or the client
 * leaves.
 * @module
 */

/** A body that cannot be read; `status` is the answer (400, 408 or 413). */
export class BodyError extends Error {
  /** Creates the error. */
  constructor(readonly status: 400 | 408 | 413, message: string) {
    super(message);
    this.name = "BodyError";
  }
}

/** Limits for {@link readBodyCapped}. */
export interface BodyLimits {
  /** Largest body in bytes (413 beyond). */
  maxBytes: number;
  /** Milliseconds the whole body may take to arrive (408 beyond). */
  timeoutMs: number;
  /** Aborts the read (e.g. the client left). */
  signal?: AbortSignal;
  /** Hears the bytes received so far, before they are kept; may throw to stop. */
  onBytes?: (received: number) => void;
}

/** Throws 413 when the declared Content-Length is over the cap. */
export function checkDeclaredLength(request: Request, maxBytes: number): void {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    throw new BodyError(413, `body is larger than ${maxBytes} bytes`);
  }
}

/** Reads the whole body, at most `maxBytes`, within `timeoutMs`. */
export async function readBodyCapped(
  request: Request,
  limits: BodyLimits,
): Promise<Uint8Array> {
  checkDeclaredLength(request, limits.maxBytes);
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const stop = limits.signal
    ? AbortSignal.any([timeout, limits.signal])
    : timeout;
  const cancel = () => reader.cancel().catch(() => {});
  stop.addEventListener("abort", cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (error) {
        throw new BodyError(
          400,
          `the body broke off: ${(error as Error)?.message ?? error}`,
        );
      }
      if (stop.aborted) {
        throw timeout.aborted
          ? new BodyError(
            408,
            `the body did not arrive within ${limits.timeoutMs / 1000} s`,
          )
          : new BodyError(400, "the client left before sending its body");
      }
      if (next.done) break;
      size += next.value.length;
      limits.onBytes?.(Math.min(size, limits.maxBytes));
      if (size > limits.maxBytes) {
        cancel();
        throw new BodyError(
          413,
          `body is larger than ${limits.maxBytes} bytes`,
        );
      }
      chunks.push(next.value);
    }
  } finally {
    stop.removeEventListener("abort", cancel);
  }
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
