/**
 * Serving one representation (an artifact or a manifest) per RFC 9110:
 * preconditions in the order of §13.2.2 (If-Match and If-Unmodified-Since:
 * 412; If-None-Match with weak comparison and If-Modified-Since: 304),
 * If-Range, single ranges (206), multiple ranges (multipart/byteranges) and
 * unsatisfiable ones (416) as {@link decideRange} decides. Bodies stream from
 * disk one chunk per read of the client (backpressure: memory stays flat
 * however slowly clients read); small ones come from memory. Body bytes are
 * counted when the HTTP engine has taken them, not when they are queued.
 * @module
 */
import { fileIdentity } from "./artifacts.ts";
import { jsonError } from "./json_response.ts";
import { type ByteRange, decideRange, MAX_RANGES } from "./range_header.ts";

/** What is known about the representation being served. */
export interface ServedFile {
  /** Host path (needed unless `bytes` is set). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, when there is one (Last-Modified). */
  mtime: Date | null;
  /** sha256 hex of the contents (the strong ETag). */
  sha256: string;
  /** Content-Type. */
  contentType: string;
  /** The bytes, when small enough to be held in memory. */
  bytes?: Uint8Array;
  /**
   * The file identity (artifacts.ts `fileIdentity`) the hash was computed
   * for; a streamed body is cut off when the open file's identity differs
   * at its start or its end.
   */
  identity?: string;
}

/** The file being streamed is not (or no longer) the one its ETag names. */
export class ContentChangedError extends Error {
  /** Creates the error. */
  constructor(path: string) {
    super(`${path} changed while being served; the response was cut off`);
    this.name = "ContentChangedError";
  }
}

/** Counts body bytes handed to the connection. */
export type ByteCounter = (bytes: number) => void;

/** How to count what a response writes. */
export interface CountOptions {
  /** Called with body bytes as they are written. */
  written: ByteCounter;
  /**
   * True when the body goes to Deno's HTTP engine, which takes each chunk
   * (without copying) before it asks for the next: streamed chunks are then
   * detached once taken, so their memory is freed as soon as the engine has
   * written them. Leave it unset for any other reader, which may still hold
   * the chunks it was given.
   */
  engine?: boolean;
  /**
   * Settles when the response has been sent (resolves) or abandoned
   * (rejects); bodies held in memory are counted when it resolves. Without
   * it they are counted at once.
   */
  completed?: Promise<void>;
}

/** Counts an in-memory body of `n` bytes once it has been sent. */
export function countWhenSent(count: CountOptions, n: number): void {
  if (count.completed) count.completed.then(() => count.written(n), noop);
  else count.written(n);
}

/** Smallest and largest chunk read from disk per pull of the client. */
const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 64 * 1024;
/** A pull this soon after the previous chunk means the client reads fast. */
const FAST_PULL_MS = 2;

/**
 * Yields bytes [start, end] of a file, closing it when done or abandoned.
 * All come from one open descriptor, whose identity must be `identity` (when
 * given) when it is opened and again before the last chunk: a file replaced
 * by rename keeps serving the bytes that were hashed, and one rewritten in
 * place (`cp -p`) cuts the response off before it can complete with mixed
 * bytes under the old ETag.
 */
async function* fileChunks(
  path: string,
  start: number,
  end: number,
  chunkSize: () => number,
  identity: string | undefined,
  engine: boolean,
): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const check = async (end: boolean) => {
    if (identity === undefined) return;
    const info = await file.stat();
    if (fileIdentity(info) === identity) return;
    // Unlinking (a replacement by rename, a removal) moves the ctime too;
    // the bytes of a file no name points to are still the ones hashed
    // when its size and mtime are.
    if (end && info.nlink === 0 && sameContent(info, identity)) return;
    throw new ContentChangedError(path);
  };
  await check(false);
  if (start > 0) await file.seek(start, Deno.SeekMode.Start);
  for (let position = start; position <= end;) {
    const buffer = new Uint8Array(Math.min(chunkSize(), end + 1 - position));
    const n = await file.read(buffer);
    if (n === null) throw new ContentChangedError(path);
    position += n;
    if (position > end) await check(true);
    try {
      yield n === buffer.length ? buffer : buffer.subarray(0, n);
    } finally {
      // Resumed for the next chunk, or abandoned: the engine has it.
      if (engine) release(buffer);
    }
  }
}

/**
 * Lets go of a chunk the HTTP engine has been handed: detaching its buffer
 * drops JavaScript's hold on the memory, which is then freed as soon as the
 * engine has written it instead of at the next garbage collection (under
 * many fast downloads, garbage chunks otherwise grew the resident memory by
 * hundreds of MiB).
 */
function release(buffer: Uint8Array<ArrayBuffer>): void {
  try {
    buffer.buffer.transfer(0);
  } catch {
    // not detachable: the garbage collector frees it
  }
}

/**
 * A body pulled from `chunks` one chunk per read (no read-ahead). A chunk is
 * counted when the next one is asked for, or at the end: that is when the
 * engine has written it.
 */
function pulledBody(
  chunks: (chunkSize: () => number) => AsyncGenerator<Uint8Array>,
  written: ByteCounter,
): ReadableStream<Uint8Array> {
  let pending = 0;
  let size = MIN_CHUNK;
  let lastEnqueue = 0;
  const iterator = chunks(() => size);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      written(pending);
      pending = 0;
      // Fast readers get larger chunks; slow ones hold only small ones.
      size = performance.now() - lastEnqueue < FAST_PULL_MS
        ? Math.min(MAX_CHUNK, size * 2)
        : MIN_CHUNK;
      const next = await iterator.next();
      if (next.done) {
        controller.close();
        return;
      }
      pending = next.value.length;
      lastEnqueue = performance.now();
      controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return(undefined);
    },
  }, { highWaterMark: 0 });
}

/** True when `info` has the device, inode, size and mtime of `identity`. */
function sameContent(info: Deno.FileInfo, identity: string): boolean {
  const now = fileIdentity(info);
  return now.slice(0, now.lastIndexOf(":")) ===
    identity.slice(0, identity.lastIndexOf(":"));
}

/** The body for bytes [start, end]. */
function bodyFor(
  file: ServedFile,
  start: number,
  end: number,
  count: CountOptions,
): BodyInit {
  if (file.bytes) {
    countWhenSent(count, end + 1 - start);
    return file.bytes.subarray(start, end + 1) as Uint8Array<ArrayBuffer>;
  }
  return pulledBody(
    (chunkSize) =>
      fileChunks(
        file.path,
        start,
        end,
        chunkSize,
        file.identity,
        count.engine === true,
      ),
    count.written,
  );
}

function multipartBody(
  file: ServedFile,
  parts: { head: Uint8Array; range: ByteRange }[],
  tail: Uint8Array,
  count: CountOptions,
): ReadableStream<Uint8Array> {
  return pulledBody(async function* (chunkSize) {
    for (const { head, range } of parts) {
      yield head;
      if (file.bytes) yield file.bytes.subarray(range.start, range.end + 1);
      else {
        yield* fileChunks(
          file.path,
          range.start,
          range.end,
          chunkSize,
          file.identity,
          count.engine === true,
        );
      }
    }
    yield tail;
  }, count.written);
}

function noop(): void {}

/** Entity tags in an If-Match / If-None-Match list (`*` is its own entry). */
function entityTags(header: string): string[] {
  return header.split(",").map((t) => t.trim()).filter((t) => t !== "");
}

/** Weak comparison (§8.8.3.2): opaque tags equal, W/ ignored on both sides. */
function weakMatch(header: string, etag: string): boolean {
  return entityTags(header).some((t) =>
    t === "*" || (t.startsWith("W/") ? t.slice(2) : t) === etag
  );
}

/** Strong comparison: neither tag weak, and equal. */
function strongMatch(header: string, etag: string): boolean {
  return entityTags(header).some((t) => t === "*" || t === etag);
}

/** A date header as ms since the epoch, or null when absent or invalid. */
function dateHeader(request: Request, name: string): number | null {
  const value = request.headers.get(name);
  if (value === null) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** Builds the response for GET or HEAD of a representation. */
export function fileResponse(
  request: Request,
  file: ServedFile,
  count: CountOptions,
  extraHeaders: Record<string, string> = {},
): Response {
  const etag = `"${file.sha256}"`;
  // HTTP dates have whole seconds.
  const modified = file.mtime === null
    ? null
    : Math.floor(file.mtime.getTime() / 1000) * 1000;
  const headers = new Headers({
    "accept-ranges": "bytes",
    etag,
    ...(modified === null
      ? {}
      : { "last-modified": new Date(modified).toUTCString() }),
    ...extraHeaders,
  });
  const get = request.method === "GET";

  // §13.2.2 steps 1-2: the client's copy must still be current.
  const ifMatch = request.headers.get("if-match");
  const ifUnmodifiedSince = ifMatch === null
    ? dateHeader(request, "if-unmodified-since")
    : null;
  if (
    (ifMatch !== null && !strongMatch(ifMatch, etag)) ||
    (ifUnmodifiedSince !== null && modified !== null &&
      modified > ifUnmodifiedSince)
  ) {
    return jsonError(
      412,
      ifMatch !== null
        ? `If-Match does not match ${etag}`
        : "modified since If-Unmodified-Since",
      Object.fromEntries(headers),
    );
  }
  // Steps 3-4: the client's copy may be reused.
  const ifNoneMatch = request.headers.get("if-none-match");
  const ifModifiedSince = ifNoneMatch === null
    ? dateHeader(request, "if-modified-since")
    : null;
  if (
    (ifNoneMatch !== null && weakMatch(ifNoneMatch, etag)) ||
    (ifModifiedSince !== null && modified !== null &&
      modified <= ifModifiedSince)
  ) {
    return new Response(null, { status: 304, headers });
  }

  const full = () => {
    headers.set("content-type", file.contentType);
    headers.set("content-length", String(file.size));
    if (!get || file.size === 0) {
      return new Response(null, { status: 200, headers });
    }
    return new Response(bodyFor(file, 0, file.size - 1, count), {
      status: 200,
      headers,
    });
  };
  // Step 5: ranges apply to GET only.
  const rangeHeader = get ? request.headers.get("range") : null;
  if (rangeHeader === null) return full();
  const ifRange = request.headers.get("if-range");
  if (ifRange !== null) {
    const value = ifRange.trim();
    const fresh = value.startsWith('"')
      ? value === etag
      : modified !== null && Date.parse(value) === modified;
    if (!fresh) return full();
  }
  const decision = decideRange(rangeHeader, file.size);
  if (decision.kind === "ignore") return full();
  if (decision.kind !== "ranges") {
    headers.set("content-range", `bytes */${file.size}`);
    return jsonError(
      416,
      decision.kind === "too_many"
        ? `${decision.count} ranges after coalescing; at most ${MAX_RANGES} are served`
        : `no range starts before the end (${file.size} bytes)`,
      Object.fromEntries(headers),
    );
  }
  const { ranges } = decision;
  if (ranges.length === 1) {
    const { start, end } = ranges[0];
    headers.set("content-type", file.contentType);
    headers.set("content-range", `bytes ${start}-${end}/${file.size}`);
    headers.set("content-length", String(end - start + 1));
    return new Response(bodyFor(file, start, end, count), {
      status: 206,
      headers,
    });
  }
  const boundary = `phase-${crypto.randomUUID()}`;
  const encoder = new TextEncoder();
  const parts = ranges.map((range, i) => ({
    range,
    head: encoder.encode(
      `${
        i === 0 ? "" : "\r\n"
      }--${boundary}\r\ncontent-type: ${file.contentType}\r\ncontent-range: bytes ${range.start}-${range.end}/${file.size}\r\n\r\n`,
    ),
  }));
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const length = parts.reduce(
    (n, p) => n + p.head.length + p.range.end - p.range.start + 1,
    tail.length,
  );
  headers.set("content-type", `multipart/byteranges; boundary=${boundary}`);
  headers.set("content-length", String(length));
  return new Response(multipartBody(file, parts, tail, count), {
    status: 206,
    headers,
  });
}
