/**
 * The provider's HTTP listener. Deno's HTTP engine parses and answers each
 * connection; this layer accepts the connections itself so that it can bound
 * them: how many may be open, how long one may take to send its first request
 * head or sit idle between requests, how long a response may go without
 * its client taking any of it (a reader that stalls is cut off), and what
 * happens when descriptors run out (the process keeps serving; it never
 * dies on `accept`).
 * @module
 */
import { jsonError } from "./json_response.ts";

/** Connection limits. */
export interface ListenerLimits {
  /**
   * Most open connections. At the limit, the connection idle the longest (no
   * request in flight) is closed to make room, else the one whose response
   * has gone longest without its client reading (at least
   * {@link SHED_STALLED_MS}); when every connection is busy and moving, new
   * ones get 503 and are closed.
   */
  maxConnections: number;
  /** Milliseconds a new connection has to deliver its first request head. */
  headersTimeoutMs: number;
  /** Milliseconds a keep-alive connection may wait for its next request. */
  idleTimeoutMs: number;
  /**
   * Milliseconds a response may go without its client taking any of its
   * body (a stalled reader); the response is abandoned and the connection
   * closed.
   */
  stallTimeoutMs: number;
  /**
   * Requests one connection may have in flight at once (cleartext HTTP/2
   * multiplexes many on one connection; HTTP/1.1 has one). Beyond it a
   * request gets 503; a connection refused more often than this is closed.
   */
  maxStreamsPerConnection: number;
  /**
   * Responses that may be stalled (no progress for {@link SHED_STALLED_MS})
   * at once; beyond it, those stalled longest are closed. Each holds up to a
   * few hundred KiB of the engine's buffers.
   */
  maxStalledResponses: number;
}

/** A response stalled this long may be closed to make room at the connection limit. */
export const SHED_STALLED_MS = 1000;

/** Limits used when none are given. */
export const DEFAULT_LISTENER_LIMITS: ListenerLimits = {
  maxConnections: 4096,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 15_000,
  stallTimeoutMs: 30_000,
  maxStreamsPerConnection: 32,
  maxStalledResponses: 128,
};

/**
 * A request handler that also gets the connection's view of the request and
 * a `progress` callback to call whenever the client has taken part of a
 * streamed body (a response with no progress for `stallTimeoutMs` is cut).
 */
export type ConnectionHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  progress: () => void,
) => Response | Promise<Response>;

/** Options for {@link listen}. */
export interface ListenOptions {
  /** Address to bind. */
  hostname: string;
  /** TCP port (0 picks a free one). */
  port: number;
  /** Answers requests. */
  handler: ConnectionHandler;
  /** The answer when the handler throws. */
  onError: (error: unknown) => Response;
  /** Connection limits (defaults: {@link DEFAULT_LISTENER_LIMITS}). */
  limits?: Partial<ListenerLimits>;
}

/** What the listener has done, for /metrics. */
export interface ListenerStats {
  /** Connections open now. */
  open: number;
  /** Connections accepted since start. */
  accepted: number;
  /** Connections answered 503 because every slot had a request in flight. */
  refused: number;
  /** Idle or stalled connections closed to make room for new ones. */
  evicted: number;
  /** Connections closed for missing their header or idle deadline. */
  timedOut: number;
  /** Connections closed because their client stopped reading a response. */
  stalled: number;
  /** Requests answered 503 for being over a connection's in-flight cap. */
  streamsRefused: number;
  /** Failed accepts (e.g. out of descriptors) that were retried. */
  acceptErrors: number;
}

/** A running listener. */
export interface HttpListener {
  /** The bound address. */
  addr: Deno.NetAddr;
  /** The limits in force. */
  limits: ListenerLimits;
  /** Counters. */
  stats: ListenerStats;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), closes the rest. */
  close(graceMs?: number): Promise<void>;
}

type ServeOnConnection = (
  connection: Deno.Conn,
  signal: AbortSignal,
  handler: (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => Response | Promise<Response>,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void> };

/**
 * Deno's per-connection HTTP server: the same engine as `Deno.serve`, fed
 * one accepted connection at a time. It is internal API, so its presence is
 * checked when a listener starts.
 */
function serveOnConnection(): ServeOnConnection {
  const internal = Reflect.get(Deno, Reflect.get(Deno, "internal") as symbol);
  const serve = internal?.serveHttpOnConnection;
  if (typeof serve !== "function") {
    throw new Error(
      `this Deno (${Deno.version.deno}) has no per-connection HTTP server; the provider needs Deno 2.9`,
    );
  }
  return serve as ServeOnConnection;
}

/** One accepted connection. */
interface Connection {
  /** Requests whose responses are not finished. */
  inflight: number;
  /** Requests seen. */
  requests: number;
  /** When it was accepted or its last response finished (ms, monotonic). */
  since: number;
  /** Requests refused for being over the in-flight cap. */
  refusals: number;
  /** Responses handed to the engine and not finished. */
  responding: number;
  /** When a response last made progress (ms, monotonic). */
  progressAt: number;
  /** Closes it at once. */
  abort: AbortController;
}

const REFUSAL = new TextEncoder().encode(
  (() => {
    const body = JSON.stringify({
      error: "unavailable",
      reason: "too many connections with requests in flight; retry shortly",
    }) + "\n";
    return "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n" +
      `retry-after: 1\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  })(),
);
/** How long a connection answered with `connection: close` lingers before it is closed. */
const CLOSE_LINGER_MS = 500;
/** Refused connections drained at once before closing (the rest are cut). */
const MAX_LINGERING = 64;

/** Starts listening. */
export function listen(options: ListenOptions): HttpListener {
  const serve = serveOnConnection();
  const limits = { ...DEFAULT_LISTENER_LIMITS, ...options.limits };
  const listener = Deno.listen({
    hostname: options.hostname,
    port: options.port,
  });
  const open = new Set<Connection>();
  const stats: ListenerStats = {
    open: 0,
    accepted: 0,
    refused: 0,
    evicted: 0,
    timedOut: 0,
    stalled: 0,
    streamsRefused: 0,
    acceptErrors: 0,
  };
  let closed = false;
  let lingering = 0;
  const finished = new Set<Promise<void>>();

  /**
   * Closes the connection waiting longest with nothing in flight, else the
   * one whose response has waited longest (over SHED_STALLED_MS) for its
   * client to read.
   */
  function evictIdle(): boolean {
    let idle: Connection | null = null;
    let stalled: Connection | null = null;
    const shedBefore = performance.now() -
      Math.min(SHED_STALLED_MS, limits.stallTimeoutMs);
    for (const c of open) {
      if (c.inflight === 0) {
        if (!idle || c.since < idle.since) idle = c;
      } else if (
        !idle && c.responding > 0 && c.progressAt < shedBefore &&
        (!stalled || c.progressAt < stalled.progressAt)
      ) {
        stalled = c;
      }
    }
    const victim = idle ?? stalled;
    if (!victim) return false;
    drop(victim);
    stats.evicted++;
    return true;
  }

  function drop(c: Connection): void {
    if (open.delete(c)) stats.open = open.size;
    abortConnection(c.abort);
  }

  async function refuse(conn: Deno.Conn): Promise<void> {
    stats.refused++;
    if (lingering >= MAX_LINGERING) return conn.close();
    lingering++;
    // Answer, then wait briefly for the client to read and hang up: closing
    // with its request unread would reset the connection and lose the 503.
    const deadline = setTimeout(() => conn.close(), 1000);
    try {
      await conn.write(REFUSAL);
      await conn.closeWrite();
      const sink = new Uint8Array(16384);
      while (await conn.read(sink) !== null) { /* discard */ }
      conn.close();
    } catch {
      // reset by the client or closed by the deadline
    } finally {
      clearTimeout(deadline);
      lingering--;
    }
  }

  function accept(conn: Deno.Conn): void {
    if (open.size >= limits.maxConnections && !evictIdle()) {
      refuse(conn);
      return;
    }
    stats.accepted++;
    const now = performance.now();
    const c: Connection = {
      inflight: 0,
      requests: 0,
      since: now,
      responding: 0,
      refusals: 0,
      progressAt: now,
      abort: new AbortController(),
    };
    open.add(c);
    stats.open = open.size;
    const progress = () => {
      c.progressAt = performance.now();
    };
    const handler = (
      request: Request,
      info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    ) => {
      c.inflight++;
      c.requests++;
      // 0: in the handler, 1: answered (its body is being sent), 2: done.
      let state = 0;
      const answered = (response?: Response) => {
        if (state !== 0) return;
        state = 1;
        c.responding++;
        c.progressAt = performance.now();
        // A refusal that leaves a request body unread says `connection:
        // close`; the engine would keep the connection until the idle
        // timeout, so it is closed once the answer is out (and the client
        // had a moment to read it).
        if (
          response && response.status >= 400 &&
          response.headers.get("connection") === "close"
        ) {
          info.completed.finally(() => {
            setTimeout(() => drop(c), CLOSE_LINGER_MS);
          }).catch(noop);
        }
      };
      const done = () => {
        if (state === 1) c.responding--;
        state = 2;
        c.inflight--;
        c.since = performance.now();
      };
      info.completed.then(done, done);
      if (c.inflight > limits.maxStreamsPerConnection) {
        // Many unread HTTP/2 streams would each hold a response: refused,
        // and a connection that keeps opening them is closed.
        stats.streamsRefused++;
        if (++c.refusals > limits.maxStreamsPerConnection) drop(c);
        const refusal = jsonError(
          503,
          `more than ${limits.maxStreamsPerConnection} requests in flight on this connection`,
          { "retry-after": "1" },
        );
        answered(refusal);
        return refusal;
      }
      const result = options.handler(request, info, progress);
      if (result instanceof Response) answered(result);
      else result.then(answered, () => answered());
      return result;
    };
    const served = serve(conn, c.abort.signal, handler, options.onError, noop)
      .finished.catch(() => {
        // a reset or a broken request ends only this connection
      }).finally(() => {
        if (open.delete(c)) stats.open = open.size;
        finished.delete(served);
      });
    finished.add(served);
  }

  const accepting = (async () => {
    while (!closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closed || error instanceof Deno.errors.BadResource) return;
        // Out of descriptors (EMFILE/ENFILE) or a connection reset before
        // it was accepted: make room and try again, never end the process.
        stats.acceptErrors++;
        evictIdle();
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      accept(conn);
    }
  })();

  const sweeper = setInterval(
    () => {
      const now = performance.now();
      const stalled: Connection[] = [];
      const shedBefore = now - Math.min(SHED_STALLED_MS, limits.stallTimeoutMs);
      for (const c of open) {
        if (c.inflight > 0) {
          // A response its client has stopped taking: cut it off.
          if (c.responding > 0 && now - c.progressAt > limits.stallTimeoutMs) {
            drop(c);
            stats.stalled++;
          } else if (c.responding > 0 && c.progressAt < shedBefore) {
            stalled.push(c);
          }
          continue;
        }
        const allowed = c.requests === 0
          ? limits.headersTimeoutMs
          : limits.idleTimeoutMs;
        if (now - c.since > allowed) {
          drop(c);
          stats.timedOut++;
        }
      }
      // Each stalled response holds some of the engine's buffers: beyond
      // the cap, the ones stalled longest are closed.
      if (stalled.length > limits.maxStalledResponses) {
        stalled.sort((a, b) => a.progressAt - b.progressAt);
        for (
          const c of stalled.slice(
            0,
            stalled.length - limits.maxStalledResponses,
          )
        ) {
          drop(c);
          stats.stalled++;
        }
      }
    },
    Math.max(
      50,
      Math.min(250, limits.headersTimeoutMs / 4, limits.stallTimeoutMs / 4),
    ),
  );

  return {
    addr: listener.addr,
    limits,
    stats,
    async close(graceMs = 2000) {
      if (closed) return;
      closed = true;
      clearInterval(sweeper);
      listener.close();
      await accepting;
      for (const c of open) if (c.inflight === 0) drop(c);
      const grace = setTimeout(() => {
        for (const c of open) drop(c);
      }, graceMs);
      while (finished.size > 0) await Promise.all(finished);
      clearTimeout(grace);
    },
  };
}

function noop(): void {}

/** True while {@link abortConnection} runs. */
let aborting = false;
globalThis.addEventListener("error", (event) => {
  if (aborting && event.error instanceof Deno.errors.BadResource) {
    event.preventDefault();
  }
});

/**
 * Closes a connection through its signal. Deno's engine closes its side from
 * the signal's abort listener; when the connection ended on its own a moment
 * earlier, that listener throws BadResource, which would otherwise surface
 * as an uncaught error and end the process. Only that error, raised during
 * this call, is absorbed.
 */
function abortConnection(controller: AbortController): void {
  aborting = true;
  try {
    controller.abort();
  } finally {
    aborting = false;
  }
}

/** The 500 answer when a handler throws. */
export function internalError(error: unknown): Response {
  return jsonError(
    500,
    String((error as Error)?.message ?? error).split("\n")[0],
  );
}
