/**
 * Phase runner: runs WASI preview1 modules in permission-less sandbox
 * processes with memory, output and wall-clock limits, and signs receipts.
 * @module
 */
export { capMemory, MIB, ModuleError } from "./wasm_binary.ts";
export {
  FUEL_EXPORT,
  instrumentFuel,
  type MeteredModule,
  METERING_VERSION,
} from "./metering.ts";
export {
  type CachedModule,
  MeteredModuleCache,
  type MeteredModuleCacheOptions,
  type MeteredModuleCacheStats,
} from "./metered_cache.ts";
export type { Preopen, StreamName } from "./wasi_env.ts";
export type { ExecuteOutcome, ExecuteRequest } from "./execute.ts";
export {
  defaultSandboxCommand,
  JobCancelled,
  QueueFullError,
  SandboxError,
  type SandboxJob,
  type SandboxOptions,
  SandboxPool,
} from "./sandbox.ts";
export {
  decodeKeyFile,
  encodeKeyFile,
  IdentityError,
  type IdentityOptions,
  loadIdentity,
  writeKeyFile,
} from "./identity.ts";
export {
  DEFAULT_LIMITS,
  isFuelBudget,
  type JobContext,
  JobRefused,
  type JobResult,
  type JobSpec,
  logReceipt,
  MAX_FUEL,
  runJob,
  RUNTIME_VERSION,
} from "./job.ts";
export { receiptLines, renderLines } from "./receipt_box.ts";
