/**
 * Phase discovery and remote execution over libp2p: the node, signed DHT
 * records, capability and boot-provider advertisement, and the job protocol.
 * @module
 */
export {
  type Capability,
  capabilityTopic,
  cidFor,
  DHT_PROTOCOL,
  type FoundNode,
  PhaseNode,
  type PhaseNodeOptions,
  WASM_RUNTIME,
} from "./node.ts";
export {
  bootProviderKey,
  capabilityKey,
  decodeRecord,
  DEFAULT_RECORD_TTL_MS,
  encodeRecord,
  jobManifestKey,
  MAX_RECORD_BYTES,
  RecordError,
  type RecordType,
  selectRecord,
  type SignedRecord,
  signRecord,
  validateRecord,
} from "./records.ts";
export {
  acceptJobs,
  JOB_PROTOCOL,
  JobRejected,
  type JobServerContext,
  judgeOffer,
  type RejectReason,
  type RemoteJob,
  type RemoteResult,
  type Requirements,
  serveJobStream,
  submitAuto,
  submitJob,
} from "./job_protocol.ts";
export {
  type BootProviderInfo,
  bootTopic,
  findBootProviders,
  publishBootProvider,
} from "./boot_providers.ts";
