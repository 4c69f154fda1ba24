/**
 * `PhaseClient`: one typed `run(job, options)` over any transport. The
 * receipt is verified before anything returns (signature under the key
 * inside `node_peer_id`, signer = the node the transport talked to, module
 * hash, input hash, nonce, and job id where the transport sets it); with
 * `replicas` the job runs on several distinct nodes and their receipts must
 * agree.
 * @module
 */
import { PhaseError, TimeoutError } from "./errors.ts";
import {
  type Job,
  type NodeInfo,
  prepareJob,
  resultOf,
  type RunResult,
} from "./job.ts";
import {
  type Agreement,
  type ReplicatedResult,
  runReplicated,
} from "./replicate.ts";
import type { Transport } from "./transport.ts";
import { verifyDelivered } from "./verify.ts";

/** Options of {@link PhaseClient}. */
export interface PhaseClientOptions {
  /** How to reach nodes: `httpTransport`, `p2pTransport` or `localTransport`. */
  transport: Transport;
}

/** Options of {@link PhaseClient.run}. */
export interface RunOptions {
  /** Give up after this many ms (default: the job's timeout + 30 s). */
  timeoutMs?: number;
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Run on this many distinct nodes and compare (default 1). */
  replicas?: number;
  /** With replicas: every one must agree, or more than half (default `all`). */
  agree?: Agreement;
  /**
   * The node to run on (a peer id for p2p, a URL as `address` for http);
   * the transport's choice when absent. Not with replicas.
   */
  node?: NodeInfo;
}

/** A client of the Phase network. */
export class PhaseClient {
  /** The transport jobs go through. */
  readonly transport: Transport;

  /** Creates a client over a transport. */
  constructor(options: PhaseClientOptions) {
    this.transport = options.transport;
  }

  /**
   * Runs a job and returns its verified result. Throws RefusedError,
   * TimeoutError, TransportError, InvalidReceiptError, or with replicas
   * DisagreementError.
   *
   * @example
   * ```ts
   * const client = new PhaseClient({
   *   transport: httpTransport({ urls: "http://127.0.0.1:8080" }),
   * });
   * const { stdout } = await client.run({ module, args: ["Hello"] });
   * ```
   */
  run(
    job: Job,
    options: RunOptions & { replicas: number },
  ): Promise<ReplicatedResult>;
  /** Runs a job once and returns its verified result. */
  run(job: Job, options?: RunOptions): Promise<RunResult>;
  async run(
    job: Job,
    options: RunOptions = {},
  ): Promise<RunResult | ReplicatedResult> {
    const prepared = await prepareJob(job);
    const limitMs = options.timeoutMs ??
      (job.timeoutSeconds ?? 30) * 1000 + 30_000;
    // A timer cleared when the run ends: Deno keeps a process alive while
    // an AbortSignal.timeout() is pending, so that would hold it open.
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new DOMException("the run took too long", "TimeoutError"),
        ),
      limitMs,
    );
    const signal = options.signal
      ? AbortSignal.any([deadline.signal, options.signal])
      : deadline.signal;
    try {
      if (options.replicas !== undefined) {
        if (options.node) {
          throw new PhaseError("replicas choose their nodes: drop node");
        }
        return await runReplicated(this.transport, prepared, {
          replicas: options.replicas,
          agree: options.agree ?? "all",
          signal,
        });
      }
      const { receipt, node } = await this.transport.execute(prepared, {
        signal,
        node: options.node,
      });
      const verified = await verifyDelivered(
        receipt,
        prepared,
        node,
        this.transport.bindsJobId,
      );
      return resultOf(verified, node);
    } catch (error) {
      if (deadline.signal.aborted && !(error instanceof TimeoutError)) {
        throw new TimeoutError(`no verified result within ${limitMs} ms`);
      }
      if (error instanceof PhaseError) throw error;
      throw new PhaseError(String((error as Error)?.message ?? error));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Releases the transport. */
  async close(): Promise<void> {
    await this.transport.close();
  }
}
