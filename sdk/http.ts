/**
 * The HTTP transport: `POST /jobs` on a provider (docs/protocol.md). The
 * node's identity is the peer id pinned for its URL, else its `GET /`
 * document's `peer_id`, asked once per URL; the receipt must be signed by
 * that key. Answers are read under a bound,
 * since the node is a stranger. Web-standard `fetch` only: runs in Deno,
 * Node and browsers.
 * @module
 */
import { readAllCapped, type RejectReason, toBase64 } from "../schemas/mod.ts";
import { RefusedError, TimeoutError, TransportError } from "./errors.ts";
import type { NodeInfo, PreparedJob } from "./job.ts";
import type { Delivery, ExecuteOptions, Transport } from "./transport.ts";

/** Largest answer read from a node: a receipt with 1 MiB of output per stream, in base64, with room. */
export const MAX_ANSWER_BYTES = 24 * 1024 * 1024;

/** Options of {@link httpTransport}. */
export interface HttpTransportOptions {
  /** Provider URLs (`http://host:8080`); the first is used unless told otherwise. */
  urls: string | string[];
  /** The fetch function (default: the global one). */
  fetch?: typeof fetch;
  /**
   * Peer ids pinned by URL: the receipt must be signed by this key, and the
   * node's own `GET /` answer is not asked (nor trusted) for it.
   */
  peerIds?: Record<string, string>;
}

const REASONS: RejectReason[] = [
  "InvalidRequest",
  "InsufficientResources",
  "ArchMismatch",
  "RuntimeNotSupported",
  "QueueFull",
  "ModuleUnavailable",
  "Timeout",
];

function base(url: string): string {
  return url.replace(/\/+$/, "");
}

async function readCapped(response: Response): Promise<string> {
  if (!response.body) return "";
  const bytes = await readAllCapped(
    response.body as unknown as AsyncIterable<Uint8Array>,
    MAX_ANSWER_BYTES,
    () => {
      throw new TransportError(
        `the node answered more than ${MAX_ANSWER_BYTES} bytes`,
      );
    },
  );
  return new TextDecoder().decode(bytes);
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TransportError(`${what} is not JSON`);
  }
}

/** The error an HTTP refusal stands for. */
function refusalOf(status: number, body: unknown, url: string): Error {
  const { reason, refusal } = (body ?? {}) as {
    reason?: unknown;
    refusal?: unknown;
  };
  const detail = typeof reason === "string"
    ? reason.slice(0, 512)
    : `HTTP ${status}`;
  if (REASONS.includes(refusal as RejectReason)) {
    return new RefusedError(refusal as RejectReason, detail);
  }
  if (status === 503 || status === 429) {
    return new RefusedError("QueueFull", detail);
  }
  if (status === 413) return new RefusedError("InsufficientResources", detail);
  if (status === 408) return new TimeoutError(`${url}: ${detail}`);
  if (status >= 400 && status < 500) {
    return new RefusedError("InvalidRequest", detail);
  }
  return new TransportError(`${url}: HTTP ${status}: ${detail}`);
}

function failure(error: unknown, signal: AbortSignal, url: string): Error {
  if (
    error instanceof RefusedError || error instanceof TransportError ||
    error instanceof TimeoutError
  ) {
    return error;
  }
  if (signal.aborted) {
    return signal.reason instanceof DOMException &&
        signal.reason.name === "TimeoutError"
      ? new TimeoutError(`${url}: no answer in time`)
      : new TransportError(`${url}: cancelled`);
  }
  const message = String((error as Error)?.message ?? error).split("\n")[0];
  return new TransportError(`${url}: ${message}`);
}

/** A transport over `POST /jobs` to one or more providers. */
export function httpTransport(options: HttpTransportOptions): Transport {
  const urls = (typeof options.urls === "string" ? [options.urls] : [
    ...options.urls,
  ]).map(base);
  if (urls.length === 0) throw new TypeError("httpTransport needs a URL");
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const identities = new Map<string, Promise<NodeInfo>>();
  const pins = new Map(
    Object.entries(options.peerIds ?? {}).map(([url, id]) => [base(url), id]),
  );

  /** The node behind a URL: its `GET /` says its peer id (asked once). */
  function identify(url: string, signal: AbortSignal): Promise<NodeInfo> {
    const pinned = pins.get(url);
    if (pinned) return Promise.resolve({ peerId: pinned, address: url });
    let known = identities.get(url);
    if (!known) {
      known = (async () => {
        const response = await doFetch(`${url}/`, {
          headers: { accept: "application/json" },
          signal,
        });
        const body = parse(await readCapped(response), `${url}/`);
        const peerId = (body as { peer_id?: unknown })?.peer_id;
        if (!response.ok || typeof peerId !== "string") {
          throw new TransportError(`${url} does not say its peer id`);
        }
        return { peerId, address: url };
      })();
      identities.set(url, known);
      known.catch(() => identities.delete(url));
    }
    return known;
  }

  return {
    kind: "http",
    bindsJobId: true,
    async nodes({ signal }) {
      const found = await Promise.allSettled(
        urls.map((url) => identify(url, signal)),
      );
      return found.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
    },
    async execute(
      job: PreparedJob,
      { signal, node }: ExecuteOptions,
    ): Promise<Delivery> {
      const url = base(node?.address ?? urls[0]);
      try {
        const identity = await identify(url, signal);
        const response = await doFetch(`${url}/jobs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            module: toBase64(job.module),
            args: job.args,
            env: job.env,
            stdin: toBase64(job.stdin),
            nonce: job.nonce,
            job_id: job.jobId,
            ...(job.memoryMb !== undefined ? { memory_mb: job.memoryMb } : {}),
            ...(job.timeoutSeconds !== undefined
              ? { timeout_seconds: job.timeoutSeconds }
              : {}),
            ...(job.fuel !== undefined ? { fuel: job.fuel } : {}),
          }),
          signal,
        });
        const text = await readCapped(response);
        if (!response.ok) {
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {
            // a refusal without a JSON body: the status says enough
          }
          throw refusalOf(response.status, body, url);
        }
        return { receipt: parse(text, "the answer"), node: identity };
      } catch (error) {
        throw failure(error, signal, url);
      }
    },
    close() {
      return Promise.resolve();
    },
  };
}
