/**
 * Serving one file per RFC 9110: ETag/Last-Modified validators,
 * If-None-Match/If-Modified-Since (304), If-Range, single ranges (206),
 * multiple ranges (multipart/byteranges), unsatisfiable ranges (416), all
 * streamed from disk in bounded chunks. Small files come from memory.
 * @module
 */
// @ts-types="@types/range-parser"
import rangeParser from "range-parser";

/** Largest number of ranges answered as multipart; more get the full body. */
const MAX_RANGES = 16;
const CHUNK = 256 * 1024;

/** What is known about the file being served. */
export interface ServedFile {
  /** Host path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time. */
  mtime: Date;
  /** sha256 hex of the contents. */
  sha256: string;
  /** Content-Type. */
  contentType: string;
  /** The bytes, when small enough to be held in memory. */
  bytes?: Uint8Array;
}

/** Counts bytes actually sent. */
export type ByteCounter = (bytes: number) => void;

/** Streams bytes [start, end] of a file, closing it when done or cancelled. */
export function fileRangeStream(
  path: string,
  start: number,
  end: number,
  count: ByteCounter,
): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let position = start;
  const close = () => {
    try {
      file?.close();
    } catch {
      // already closed
    }
    file = undefined;
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      file = await Deno.open(path, { read: true });
      await file.seek(start, Deno.SeekMode.Start);
    },
    async pull(controller) {
      const remaining = end + 1 - position;
      if (remaining <= 0 || !file) {
        close();
        controller.close();
        return;
      }
      const buffer = new Uint8Array(Math.min(CHUNK, remaining));
      const n = await file.read(buffer);
      if (n === null) {
        close();
        controller.error(new Error("file shrank while being served"));
        return;
      }
      position += n;
      count(n);
      controller.enqueue(buffer.subarray(0, n));
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 1 });
}

/**
 * The body for bytes [start, end]. A body that runs to the end of the file
 * is the file's own readable stream, which Deno pipes to the socket without
 * passing through JavaScript (flat memory, near sendfile speed); its bytes
 * are counted when the response starts.
 */
async function bodyFor(
  file: ServedFile,
  start: number,
  end: number,
  count: ByteCounter,
): Promise<BodyInit> {
  if (file.bytes) {
    count(end + 1 - start);
    return file.bytes.subarray(start, end + 1) as Uint8Array<ArrayBuffer>;
  }
  if (end === file.size - 1) {
    const handle = await Deno.open(file.path, { read: true });
    if (start > 0) await handle.seek(start, Deno.SeekMode.Start);
    count(end + 1 - start);
    return handle.readable;
  }
  return fileRangeStream(file.path, start, end, count);
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === "*") return true;
  return header.split(",").some((tag) => {
    const t = tag.trim();
    return t === etag || t === `W/${etag}`;
  });
}

/** Builds the response for GET or HEAD of a file. */
export async function fileResponse(
  request: Request,
  file: ServedFile,
  count: ByteCounter,
  extraHeaders: Record<string, string> = {},
): Promise<Response> {
  const etag = `"${file.sha256}"`;
  const lastModified = new Date(Math.floor(file.mtime.getTime() / 1000) * 1000);
  const headers = new Headers({
    "accept-ranges": "bytes",
    etag,
    "last-modified": lastModified.toUTCString(),
    "x-artifact-hash": `sha256:${file.sha256}`,
    ...extraHeaders,
  });
  const ifNoneMatch = request.headers.get("if-none-match");
  const ifModifiedSince = request.headers.get("if-modified-since");
  if (ifNoneMatch !== null) {
    if (etagMatches(ifNoneMatch, etag)) {
      return new Response(null, { status: 304, headers });
    }
  } else if (ifModifiedSince !== null) {
    const since = Date.parse(ifModifiedSince);
    if (!Number.isNaN(since) && lastModified.getTime() <= since) {
      return new Response(null, { status: 304, headers });
    }
  }
  const head = request.method === "HEAD";
  const none: ByteCounter = () => {};
  const full = async () => {
    headers.set("content-type", file.contentType);
    headers.set("content-length", String(file.size));
    if (head || file.size === 0) {
      return new Response(null, { status: 200, headers });
    }
    return new Response(await bodyFor(file, 0, file.size - 1, count), {
      status: 200,
      headers,
    });
  };
  const rangeHeader = request.headers.get("range");
  if (rangeHeader === null) return full();
  const ifRange = request.headers.get("if-range");
  if (ifRange !== null) {
    const fresh = ifRange.startsWith('"')
      ? ifRange.trim() === etag
      : Date.parse(ifRange) === lastModified.getTime();
    if (!fresh) return full();
  }
  const ranges = rangeParser(file.size, rangeHeader, { combine: true });
  if (ranges === -2 || (Array.isArray(ranges) && ranges.type !== "bytes")) {
    return full(); // malformed or unknown unit: ignored, as RFC 9110 allows
  }
  if (ranges === -1) {
    headers.set("content-range", `bytes */${file.size}`);
    headers.set("content-type", "application/json");
    return new Response(
      JSON.stringify({ error: "range not satisfiable", size: file.size }),
      { status: 416, headers },
    );
  }
  if (ranges.length > MAX_RANGES) return full();
  if (ranges.length === 1) {
    const { start, end } = ranges[0];
    headers.set("content-type", file.contentType);
    headers.set("content-range", `bytes ${start}-${end}/${file.size}`);
    headers.set("content-length", String(end - start + 1));
    return new Response(head ? null : await bodyFor(file, start, end, count), {
      status: 206,
      headers,
    });
  }
  const boundary = `phase-${crypto.randomUUID()}`;
  const encoder = new TextEncoder();
  const parts = ranges.map(({ start, end }, i) => ({
    start,
    end,
    head: encoder.encode(
      `${
        i === 0 ? "" : "\r\n"
      }--${boundary}\r\ncontent-type: ${file.contentType}\r\ncontent-range: bytes ${start}-${end}/${file.size}\r\n\r\n`,
    ),
  }));
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const length =
    parts.reduce((n, p) => n + p.head.length + p.end - p.start + 1, 0) +
    tail.length;
  headers.set("content-type", `multipart/byteranges; boundary=${boundary}`);
  headers.set("content-length", String(length));
  if (head) return new Response(null, { status: 206, headers });
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        for (const part of parts) {
          controller.enqueue(part.head);
          const stream = file.bytes
            ? ReadableStream.from([
              file.bytes.subarray(part.start, part.end + 1),
            ])
            : fileRangeStream(file.path, part.start, part.end, none);
          for await (const chunk of stream) controller.enqueue(chunk);
          count(part.end - part.start + 1);
        }
        controller.enqueue(tail);
        controller.close();
      } catch (error) {
        controller.error(error);
      }
    },
  });
  return new Response(body, { status: 206, headers });
}
