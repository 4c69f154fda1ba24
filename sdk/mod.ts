/**
 * The Phase client SDK: run WebAssembly jobs on Phase nodes from your own
 * program and trust the answer. Runs unchanged in Deno, Node (20 and later)
 * and browsers: this face loads no Deno-only, Node-only or libp2p code. The
 * libp2p transport is in `p2p.ts` (Deno and Node), the local one in
 * `local.ts` (Deno and Node).
 *
 * @example
 * ```ts
 * import { httpTransport, PhaseClient } from "./mod.ts";
 * const client = new PhaseClient({
 *   transport: httpTransport({ urls: "http://127.0.0.1:8080" }),
 * });
 * const module = await Deno.readFile("examples/wasm/hello.wasm");
 * const result = await client.run({ module, args: ["Hello"] });
 * console.log(result.stdout, result.node.peerId);
 * ```
 * @module
 */
export {
  PhaseClient,
  type PhaseClientOptions,
  type RunOptions,
} from "./client.ts";
export {
  DisagreementError,
  InvalidReceiptError,
  PhaseError,
  RefusedError,
  TimeoutError,
  TransportError,
} from "./errors.ts";
export {
  freshIdentity,
  type Job,
  type NodeInfo,
  outputBytes,
  type PreparedJob,
  prepareJob,
  type RunResult,
} from "./job.ts";
export type { Delivery, ExecuteOptions, Transport } from "./transport.ts";
export {
  httpTransport,
  type HttpTransportOptions,
  MAX_ANSWER_BYTES,
} from "./http.ts";
export {
  type Agreement,
  type ReplicatedResult,
  type Replication,
  runReplicated,
  spreadNodes,
} from "./replicate.ts";
export {
  compareReceipts,
  type Comparison,
  describeDifferences,
  type Difference,
  type DisagreementReport,
  type Outcome,
  type OutcomeGroup,
  outcomeOf,
  outputHash,
  type ReceiptCheck,
  type ReplicaFailure,
  shortPeerId,
} from "./compare.ts";
export {
  type BootManifestExpectations,
  type ManifestVerdict,
  type ReceiptExpectations,
  type ReceiptVerdict,
  verifyBootManifest,
  verifyDelivered,
  verifyReceipt,
} from "./verify.ts";
export type {
  AppliedLimits,
  Arch,
  BootArtifact,
  BootManifest,
  Channel,
  Execution,
  ExecutionStatus,
  ManifestSignature,
  PreopenRecord,
  Receipt,
  RejectReason,
  RuntimeInfo,
  Sha256Ref,
} from "../schemas/mod.ts";
export { RUNTIME_VERSION as PHASE_VERSION } from "../runner/version.ts";
