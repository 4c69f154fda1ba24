/**
 * The types of the libp2p transport, apart from its implementation: the npm
 * package's `p2p` declarations are generated from this file, which loads no
 * libp2p types.
 * @module
 */
export type { Delivery, ExecuteOptions, Transport } from "./transport.ts";
export type { NodeInfo, PreparedJob } from "./job.ts";

/** Options of the libp2p transport. */
export interface P2pTransportOptions {
  /** Multiaddrs of peers to join through (`/ip4/…/tcp/4001/p2p/12D3KooW…`). */
  bootstrap: string[];
  /** Architecture the nodes must have (default: any). */
  arch?: "x86_64" | "aarch64";
  /** How long a DHT lookup may take (default 5000 ms). */
  discoveryTimeoutMs?: number;
  /** How long the capable nodes found are reused (default 30000 ms). */
  nodesTtlMs?: number;
}
