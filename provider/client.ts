/**
 * The client side of a provider: status, manifest listing and verified,
 * resumable downloads.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { sha256File } from "./artifacts.ts";

/** Progress of a download. */
export interface DownloadProgress {
  /** Bytes on disk so far. */
  received: number;
  /** Expected total, when known. */
  total: number | null;
  /** URL being fetched. */
  url: string;
}

/** A download that could not be completed; the message is one line. */
export class DownloadError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

/** Options for {@link download}. */
export interface DownloadOptions {
  /** URLs to try in order (mirrors/providers). */
  urls: string[];
  /** Expected sha256, lowercase hex. */
  sha256: string;
  /** Destination file. */
  output: string;
  /** Expected size, when known (for progress and early checks). */
  size?: number;
  /** Attempts per URL before moving on (default 4). */
  attemptsPerUrl?: number;
  /** Called as bytes arrive. */
  onProgress?: (progress: DownloadProgress) => void;
  /** Called before a retry with the reason. */
  onRetry?: (reason: string) => void;
  /** Gives up a stalled or slow attempt (ms without progress, default 30 s). */
  stallMs?: number;
}

/** What a finished download did. */
export interface DownloadResult {
  /** Destination file. */
  output: string;
  /** Bytes in the file. */
  size: number;
  /** URL that completed it. */
  url: string;
  /** Attempts that resumed an earlier partial file. */
  resumes: number;
  /** True when the destination already held the right bytes. */
  alreadyPresent: boolean;
}

/** Feeds a file's bytes to `hash`. */
async function hashInto(hash: Hash, path: string): Promise<void> {
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1024 * 1024);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) return;
    hash.update(buffer.subarray(0, n));
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Downloads to `output`, verifying the sha256 before the file appears under
 * its name. Partial data lives in `output.part` (ours to resume or remove);
 * a broken connection resumes with a Range request; an existing `output` with
 * other contents is never overwritten.
 */
export async function download(
  options: DownloadOptions,
): Promise<DownloadResult> {
  const { output, sha256 } = options;
  const existing = await fileSize(output);
  if (existing !== null) {
    if (await sha256File(output) === sha256) {
      return {
        output,
        size: existing,
        url: "",
        resumes: 0,
        alreadyPresent: true,
      };
    }
    throw new DownloadError(
      `${output} exists with other contents; remove it or choose another --output`,
    );
  }
  const part = `${output}.part`;
  const attempts = options.attemptsPerUrl ?? 4;
  const stallMs = options.stallMs ?? 30_000;
  let resumes = 0;
  let lastError = "no URL given";
  for (const url of options.urls) {
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        options.onRetry?.(lastError);
        await new Promise((r) =>
          setTimeout(r, Math.min(200 * 2 ** attempt, 3000))
        );
      }
      const offset = (await fileSize(part)) ?? 0;
      const headers: HeadersInit = offset > 0
        ? { range: `bytes=${offset}-` }
        : {};
      const controller = new AbortController();
      let timer = setTimeout(() => controller.abort(), stallMs);
      try {
        const response = await fetch(url, {
          headers,
          signal: controller.signal,
        });
        let append = false;
        if (response.status === 206 && offset > 0) {
          const range = response.headers.get("content-range") ?? "";
          if (!range.startsWith(`bytes ${offset}-`)) {
            await response.body?.cancel();
            throw new Error(`unexpected Content-Range ${range}`);
          }
          append = true;
          resumes++;
        } else if (response.status === 416 && offset > 0) {
          await response.body?.cancel();
          // The partial file is complete (or longer than the artifact).
          append = true;
        } else if (response.status !== 200) {
          await response.body?.cancel();
          lastError = `${url} answered HTTP ${response.status}`;
          if (response.status === 404 || response.status === 403) break;
          continue;
        }
        const lengthHeader = response.headers.get("content-length");
        const total = options.size ??
          (lengthHeader ? Number(lengthHeader) + (append ? offset : 0) : null);
        // Hashed as it is written (the part already there first), instead
        // of read back afterwards: a second pass over a large file costs
        // about a second under emulation.
        const hash = createHash("sha256");
        if (append) await hashInto(hash, part);
        if (response.status !== 416) {
          using file = await Deno.open(part, {
            write: true,
            create: true,
            append,
            truncate: !append,
          });
          let received = append ? offset : 0;
          for await (const chunk of response.body!) {
            clearTimeout(timer);
            timer = setTimeout(() => controller.abort(), stallMs);
            let written = 0;
            while (written < chunk.length) {
              written += await file.write(chunk.subarray(written));
            }
            hash.update(chunk);
            received += chunk.length;
            if (options.size !== undefined && received > options.size) {
              throw new Error(`more bytes than the expected ${options.size}`);
            }
            options.onProgress?.({ received, total, url });
          }
        }
        const actual = hash.digest("hex");
        if (actual !== sha256) {
          await Deno.remove(part);
          lastError = `${url}: sha256 mismatch (got ${actual}, want ${sha256})`;
          continue;
        }
        await Deno.rename(part, output);
        return {
          output,
          size: (await fileSize(output))!,
          url,
          resumes,
          alreadyPresent: false,
        };
      } catch (error) {
        lastError = `${url}: ${
          controller.signal.aborted
            ? "stalled"
            : (error as Error).message.split("\n")[0]
        }`;
      } finally {
        clearTimeout(timer);
      }
    }
  }
  throw new DownloadError(`download failed: ${lastError}`);
}

/** Fetches JSON from a provider with a timeout; one-line errors. */
export async function fetchJson(
  url: string,
  timeoutMs = 10_000,
): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new DownloadError(
      `cannot reach ${url}: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    throw new DownloadError(
      `${url} answered HTTP ${response.status} with no JSON`,
    );
  }
}
