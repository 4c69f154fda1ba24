/**
 * Phase runner: runs WASI preview1 modules in permission-less sandbox
 * processes with one memory budget, fuel, output and wall-clock limits per
 * job, and signs receipts.
 * @module
 */
export {
  capMemory,
  MIB,
  ModuleError,
  TABLE_ENTRY_BYTES,
} from "./wasm_binary.ts";
export { checkLink, WASI_PREVIEW1 } from "./link.ts";
export {
  atomicWriteFile,
  type AtomicWriteOptions,
  removeStaleTemporaries,
  STALE_TEMPORARY_MS,
  TEMPORARY_MARK,
} from "./atomic_file.ts";
export {
  FUEL_EXPORT,
  instrumentFuel,
  type MeteredModule,
  METERING_VERSION,
  REFUEL_IMPORT,
  START_EXPORT,
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
  assertFlagSafePath,
  defaultSandboxCommand,
  JobCancelled,
  MAX_TIMEOUT_MS,
  prestartSandbox,
  QueueFullError,
  SANDBOX_OVERHEAD_MIB,
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
  type JobContext,
  JobRefused,
  type JobResult,
  type JobSpec,
  runJob,
} from "./job.ts";
export {
  MAX_SEED_ENTRIES,
  MAX_SEED_NAME,
  MAX_SEED_PATH,
  readSeedDir,
  SCRATCH_ENTRY_BYTES,
  seedCost,
  type SeedEntry,
  SeedError,
  seedPathProblem,
  seedProblem,
} from "./scratch_seed.ts";
export {
  DEFAULT_LIMITS,
  isFuelBudget,
  LIMIT_RANGES,
  limitProblem,
  type LimitRange,
  MAX_FUEL,
} from "./limits.ts";
export { RUNTIME_VERSION } from "./version.ts";
export { receiptLines, renderLines } from "./receipt_box.ts";
// Types the runner's API uses, so its documentation is complete from here.
export type { AppliedLimitsInput } from "./limits.ts";
export type { CappedModule, FuncType } from "./wasm_binary.ts";
export type { WriteKeyOptions } from "./identity.ts";
