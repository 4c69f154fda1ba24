/**
 * What a transport is: a way to deliver a prepared job to a node and bring
 * back whatever receipt it answers, and a list of the nodes it can reach
 * (for replicated runs). Transports verify nothing; the client does.
 * @module
 */
import type { NodeInfo, PreparedJob } from "./job.ts";

/** What a transport brings back from a node. */
export interface Delivery {
  /** The receipt as it arrived: not yet trusted. */
  receipt: unknown;
  /** The node the transport talked to. */
  node: NodeInfo;
}

/** Options of {@link Transport.execute}. */
export interface ExecuteOptions {
  /** Ends the attempt (timeouts and cancellation). */
  signal: AbortSignal;
  /** The node to use; the transport's choice when absent. */
  node?: NodeInfo;
}

/** A way to reach Phase nodes: HTTP, libp2p or the local CLI. */
export interface Transport {
  /** `http`, `p2p` or `local`. */
  readonly kind: string;
  /**
   * Whether the receipt carries the job id the client chose (true for the
   * network transports); when false only the nonce binds it to the request.
   */
  readonly bindsJobId: boolean;
  /**
   * The distinct nodes this transport can reach (for replicas); `fresh`
   * asks it to look again rather than answer what it found before.
   */
  nodes(options: { signal: AbortSignal; fresh?: boolean }): Promise<NodeInfo[]>;
  /**
   * Delivers a job and returns the node's receipt. Throws the SDK's errors:
   * RefusedError, TimeoutError or TransportError.
   */
  execute(job: PreparedJob, options: ExecuteOptions): Promise<Delivery>;
  /** Releases what the transport holds (connections, a libp2p node). */
  close(): Promise<void>;
}
