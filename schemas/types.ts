/** A content hash written as `sha256:<64 lowercase hex digits>`. */
export type Sha256Ref = `sha256:${string}`;

/** How a guest run ended. */
export type ExecutionStatus =
  | "exited"
  | "timeout"
  | "memory_limit"
  | "trap"
  | "fuel_exhausted";

/** Limits a node applied to one job; recorded in its receipt. */
export interface AppliedLimits {
  /** Linear memory cap in MiB. */
  memory_mb: number;
  /** Wall-clock limit in seconds. */
  timeout_seconds: number;
  /** Fuel budget, or null when the job ran unmetered. */
  fuel: number | null;
  /** Cap on captured bytes per output stream. */
  output_bytes: number;
  /** The directories the guest was given (absent when none). */
  preopens?: PreopenRecord[];
}

/** A directory a guest was given, as its receipt shows it. */
export interface PreopenRecord {
  /** Guest path. */
  guest: string;
  /** Host directory read-only or read-write, or an in-memory scratch tree. */
  access: "read-only" | "read-write" | "scratch";
  /** Digest of the scratch seed ({@link ScratchSeed}), when seeded. */
  seed_sha256?: string;
}

/** One entry of a seeded scratch directory as a request carries it. */
export interface ScratchSeedEntry {
  /** Relative path. */
  path: string;
  /** What the entry is. */
  kind: "file" | "dir" | "symlink";
  /** A file's bytes as base64. */
  data?: string;
  /** A link's target. */
  target?: string;
}

/** A seeded scratch directory in a request (common `scratch`). */
export interface ScratchSeed {
  /** Guest path. */
  path: string;
  /** What it starts with. */
  entries: ScratchSeedEntry[];
}

/** Measured facts of one guest run. */
export interface Execution {
  /** How the run ended. */
  status: ExecutionStatus;
  /** The guest's exit code, or null when it did not exit by itself. */
  exit_code: number | null;
  /** Wall time from instantiation to the end of the run. */
  wall_time_ms: number;
  /** CPU time the sandbox process spent on the run, when measurable. */
  cpu_time_ms: number | null;
  /** Largest size the guest's linear memory reached. */
  memory_peak_mb: number;
  /** Fuel spent, or null when the job ran unmetered. */
  fuel_consumed: number | null;
  /** Human-readable reason for a status other than `exited`. */
  error: string | null;
}

/** The name and version of the runtime that executed a job. */
export interface RuntimeInfo {
  /** Implementation name, e.g. `phase-deno`. */
  name: string;
  /** Implementation version. */
  version: string;
  /** WASI version offered to the guest. */
  wasi: "preview1";
}

/** A signed receipt (schemas/receipt.schema.json, version 1). */
export interface Receipt {
  /** Format version. */
  version: 1;
  /** Identifier of the job. */
  job_id: string;
  /** Client- or node-chosen nonce, lowercase hex. */
  nonce: string;
  /** RFC 3339 time the receipt was made. */
  timestamp: string;
  /** sha256 of the module bytes as submitted. */
  module_hash: Sha256Ref;
  /** sha256 of the JCS bytes of {args, env, stdin_sha256}. */
  input_hash: Sha256Ref;
  /** Limits the node applied. */
  limits: AppliedLimits;
  /** What happened. */
  execution: Execution;
  /** Captured standard output (see output_encoding). */
  stdout: string;
  /** Captured standard error (see output_encoding). */
  stderr: string;
  /** True when stdout exceeded limits.output_bytes and was cut. */
  stdout_truncated: boolean;
  /** True when stderr exceeded limits.output_bytes and was cut. */
  stderr_truncated: boolean;
  /** `utf-8` when both streams are valid UTF-8, otherwise `base64`. */
  output_encoding: "utf-8" | "base64";
  /** Runtime that executed the job. */
  runtime: RuntimeInfo;
  /** libp2p peer id of the signing node; carries its Ed25519 public key. */
  node_peer_id: string;
  /** Base64 Ed25519 signature over the JCS bytes of all other members. */
  signature: string;
}

/** A receipt before it is signed. */
export type UnsignedReceipt = Omit<Receipt, "signature">;

/** A job manifest (schemas/job_manifest.schema.json, version 1). */
export interface JobManifest {
  /** Format version. */
  version: 1;
  /** Optional short name, e.g. `hello`. */
  name?: string;
  /** sha256 the module must have. */
  module_hash: Sha256Ref;
  /** CPU cores the job expects (a scheduling hint; guests are single-threaded). */
  cpu_cores?: number;
  /** Memory cap in MiB. */
  memory_mb?: number;
  /** Wall-clock limit in seconds. */
  timeout_seconds?: number;
  /** Fuel budget. */
  fuel?: number;
  /** Guest arguments (after argv[0]). */
  args?: string[];
  /** Guest environment. */
  env?: Record<string, string>;
  /** Nonce to bind the receipt to this request. */
  nonce?: string;
}

/** Release channels. */
export type Channel = "stable" | "testing" | "nightly";

/** Canonical architecture names (aliases: amd64, arm64). */
export type Arch = "x86_64" | "aarch64";

/** One file a boot manifest names. */
export interface BootArtifact {
  /** File name on the provider. */
  filename: string;
  /** Size in bytes. */
  size: number;
  /** sha256 of the bytes, lowercase hex. */
  sha256: string;
  /** Where to fetch it; relative URLs resolve against the manifest's URL. */
  urls: string[];
}

/** A signature entry of a boot manifest. */
export interface ManifestSignature {
  /** Peer id of the signing key (a hint; verifiers use pinned keys). */
  key_id: string;
  /** Always `ed25519`. */
  algorithm: "ed25519";
  /** Base64 signature over the JCS bytes of the manifest without signatures. */
  sig: string;
}

/** A boot manifest (schemas/boot_manifest.schema.json). */
export interface BootManifest {
  /** Format tag. */
  format: "phase-boot-manifest/1";
  /** Monotonic counter for rollback protection. */
  manifest_version: number;
  /** Release version. */
  version: string;
  /** Release channel. */
  channel: Channel;
  /** Architecture. */
  arch: Arch;
  /** RFC 3339 creation time. */
  created_at: string;
  /** RFC 3339 expiry time. */
  expires_at: string;
  /** Kernel command line for the booted kernel. */
  cmdline: string;
  /** The provider that generated it, when generated by one. */
  provider?: { peer_id: string; addresses: string[] };
  /** Artifacts by role (kernel, initramfs, rootfs, dtbs, or file name). */
  artifacts: Record<string, BootArtifact>;
  /** Signatures. */
  signatures: ManifestSignature[];
}

/** The signature of a release's SHA256SUMS (schemas/release_signature.schema.json). */
export interface ReleaseSignature {
  /** Format tag. */
  format: "phase-release-signature/1";
  /** The signed file's name. */
  file: "SHA256SUMS";
  /** Its size in bytes. */
  size: number;
  /** Its sha256 (hex). */
  sha256: string;
  /** Release version. */
  version: string;
  /** RFC 3339 signing time. */
  created_at: string;
  /** Signatures, as in boot manifests. */
  signatures: ManifestSignature[];
}

/** Why a node refuses a job (the `reason` of a rejected message). */
export type RejectReason =
  | "InvalidRequest"
  | "InsufficientResources"
  | "ArchMismatch"
  | "RuntimeNotSupported"
  | "QueueFull"
  | "ModuleUnavailable"
  | "Timeout";

/** What a job needs from a node (an offer's `requirements`). */
export interface Requirements {
  /** CPU cores. */
  cpu_cores?: number;
  /** Memory cap in MiB. */
  memory_mb?: number;
  /** Wall-clock limit in seconds. */
  timeout_seconds?: number;
  /** Fuel budget, or null for the node's default. */
  fuel?: number | null;
  /** Architecture, or "any" (WASM is portable). */
  arch?: "any" | "x86_64" | "aarch64";
  /** Runtime, e.g. `wasi-preview1@0.2.0`. */
  wasm_runtime?: string;
}

/** `/phase/job/1.0.0` offer (schemas/job_offer.schema.json). */
export interface JobOffer {
  /** Message type. */
  type: "offer";
  /** Client-chosen job id. */
  job_id: string;
  /** Client-chosen nonce. */
  nonce: string;
  /** sha256 of the module. */
  module_hash: Sha256Ref;
  /** Size of the module in bytes. */
  module_size: number;
  /** Size of the request's `scratch` as UTF-8 JSON (absent: none). */
  scratch_bytes?: number;
  /** What the job needs. */
  requirements: Requirements;
}

/** `/phase/job/1.0.0` request (schemas/job_request.schema.json). */
export interface JobRequestMessage {
  /** Message type. */
  type: "request";
  /** The offered job id. */
  job_id: string;
  /** The module as base64, or null when the node has it cached. */
  module?: string | null;
  /** Where the node may fetch the module instead. */
  module_url?: string;
  /** Guest arguments. */
  args?: string[];
  /** Guest environment. */
  env?: Record<string, string>;
  /** Standard input as base64. */
  stdin?: string;
  /** A seeded scratch directory. */
  scratch?: ScratchSeed;
}

/**
 * The answer of `/phase/capable-peers/1.0.0`
 * (schemas/capable_peers.schema.json): peers the answering node believes
 * run jobs. A hint: clients re-validate each peer before using it.
 */
export interface CapablePeers {
  /** At most 64 peers. */
  peers: { peer_id: string; addresses: string[] }[];
}

/** What a node offers for jobs (schemas/capability.schema.json). */
export interface Capability extends Record<string, unknown> {
  /** Canonical architecture. */
  arch: string;
  /** CPU cores available for jobs. */
  cpu_cores: number;
  /** Largest memory_mb a job may ask for. */
  memory_mb: number;
  /** Runtime name and version. */
  runtime: { name: string; version: string; wasi: "preview1" };
  /** Job limits. */
  limits: { max_timeout_seconds: number; max_module_bytes: number };
  /** Load when the record was made. */
  load: { queued: number; queue_limit: number };
  /** HTTP provider base URL when it serves artifacts. */
  http_url?: string;
}

/** Boot-provider record payload (schemas/boot_provider.schema.json). */
export interface BootProviderPayload extends Record<string, unknown> {
  /** Where the provider's signed boot manifest is. */
  manifest_url: string;
  /** Its manifest_version when published, if known. */
  manifest_version: number | null;
}

/** What replicas of a deterministic job must agree on. */
export interface Outcome {
  /** sha256 of the JCS bytes of the output fields (see the SDK's outputHash). */
  output_hash: string;
  /** `execution.status`. */
  status: ExecutionStatus;
  /** `execution.exit_code`. */
  exit_code: number | null;
  /** `execution.fuel_consumed`. */
  fuel_consumed: number | null;
}

/** One field whose value is not the same in every valid receipt. */
export interface Difference {
  /** The field's path in the receipt, e.g. `execution.exit_code`. */
  field: string;
  /** Each value and the signers (peer ids) that signed it. */
  values: { value: unknown; peer_ids: string[] }[];
}

/** Receipts whose outcome is the same. */
export interface OutcomeGroup {
  /** The outcome. */
  outcome: Outcome;
  /** The signers (peer ids) of the receipts with it. */
  peer_ids: string[];
}

/** A node that was asked for a replica and gave no valid receipt. */
export interface ReplicaFailure {
  /** The node, when known. */
  peer_id: string | null;
  /** What went wrong, one line. */
  error: string;
}

/**
 * What replicas of one job answered when they did not agree as asked: every
 * receipt (each checkable offline with its own signature), how they differ,
 * and which nodes dissent from the largest group. JSON, self-contained (schemas/disagreement_report.schema.json).
 */
export interface DisagreementReport {
  /** Always `phase-disagreement-report`. */
  type: "phase-disagreement-report";
  /** Format version (1). */
  version: 1;
  /** When the report was made (RFC 3339). */
  created_at: string;
  /** The agreement asked for. */
  agree: "all" | "majority";
  /** How many replicas were asked for. */
  replicas: number;
  /** The job's module. */
  module_hash: string;
  /** The job's input. */
  input_hash: string;
  /** One line: what disagreed. */
  summary: string;
  /** Every receipt received, verified, in the order the nodes answered. */
  receipts: Receipt[];
  /** Receipts grouped by outcome, the largest group first. */
  groups: OutcomeGroup[];
  /** Fields that differ, with the signers of each value. */
  differences: Difference[];
  /** Nodes outside the largest group (all of them when there is a tie). */
  dissenters: string[];
  /** Nodes that gave no valid receipt. */
  failures: ReplicaFailure[];
}
