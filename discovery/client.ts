/**
 * The client face of discovery: what a short-lived client needs to find
 * capable nodes and run jobs on them over libp2p, without the node layer
 * (no runner, no job service, no Deno-only API). `phase discover`,
 * `phase submit` and the SDK's p2p transport (Deno and Node) use it.
 * @module
 */
export { type FoundNode, PhaseNode, type PhaseNodeOptions } from "./node.ts";
export {
  type Attempt,
  firstLine,
  JOB_PROTOCOL,
  JobRejected,
  type RemoteJob,
  type RemoteResult,
  submitAuto,
  submitJob,
} from "./job_client.ts";
