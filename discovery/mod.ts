/**
 * Phase discovery and remote execution over libp2p: the node, signed DHT
 * records, capability and boot-provider advertisement, and the job protocol.
 * @module
 */
export {
  type Capability,
  CAPABILITY_TTL_MS,
  capabilityTopic,
  DHT_PROTOCOL,
  DHT_STORE_LIMITS,
  type FoundNode,
  MAX_PROBES_PER_LOOKUP,
  MAX_REFERRERS,
  PhaseNode,
  type PhaseNodeOptions,
  PROBES_IN_FLIGHT,
  PROVIDER_TTL_MS,
  REPROVIDE_INTERVAL_MS,
  WASM_RUNTIME,
} from "./node.ts";
export {
  answerCapability,
  CAPABILITY_PROTOCOL,
  PROBE_TIMEOUT_MS,
  readCapability,
} from "./capability_protocol.ts";
export {
  answerReferrals,
  askReferrals,
  MAX_REFERRAL_BYTES,
  MAX_REFERRALS,
  REFERRAL_PROTOCOL,
} from "./referral_protocol.ts";
export {
  bootProviderKey,
  capabilityKey,
  decodeRecord,
  DEFAULT_RECORD_TTL_MS,
  encodeRecord,
  jobManifestKey,
  MAX_CLOCK_SKEW_MS,
  MAX_RECORD_BYTES,
  MAX_RECORD_LIFETIME_MS,
  RecordError,
  type RecordType,
  selectRecord,
  type SignedRecord,
  signRecord,
  validatorKeepingNewest,
} from "./records.ts";
export { acceptJobs, MESSAGE_TIMEOUT_MS } from "./job_protocol.ts";
export {
  type Attempt,
  firstLine,
  JOB_PROTOCOL,
  JobRejected,
  OFFER_TIMEOUT_MS,
  type RemoteJob,
  type RemoteResult,
  SUBMIT_LOOKUPS,
  submitAuto,
  submitJob,
} from "./job_client.ts";
export {
  decodeLength,
  encodeLength,
  FrameError,
  FrameStream,
  MAX_MESSAGE_BYTES,
  MAX_OFFER_BYTES,
} from "./framing.ts";
export { p2pTransport, type P2pTransportOptions } from "./transport.ts";
export {
  type BootProviderInfo,
  bootTopic,
  findBootProviders,
  publishBootProvider,
} from "./boot_providers.ts";
// The types this module's exports are written in, so that a reader of its
// API (and `deno doc`) sees each one.
export type * from "../schemas/mod.ts";
export type * from "../node/mod.ts";
export type * from "../runner/mod.ts";
