/**
 * A job from request to signed receipt: checks the module against its
 * manifest, runs it in the sandbox and signs what happened.
 * @module
 */
import type {
  AppliedLimits,
  JobManifest,
  NodeKey,
  PreopenRecord,
  Receipt,
} from "../schemas/mod.ts";
// Each from its own file: a one-shot `phase run` loads only these.
import { randomHex, sha256Ref, toBase64 } from "../schemas/encoding.ts";
import { inputHash, signReceipt } from "../schemas/receipt.ts";
import { seedDigest } from "../schemas/seed_digest.ts";
import type { ExecuteOutcome } from "./execute.ts";
import { checkLink } from "./link.ts";
import { MeteredModuleCache } from "./metered_cache.ts";
import type { SandboxPool } from "./sandbox.ts";
import type { Preopen } from "./wasi_env.ts";
import { DEFAULT_LIMITS, limitProblem, MAX_FUEL } from "./limits.ts";
import { MIB } from "./wasm_binary.ts";
import { RUNTIME_VERSION } from "./version.ts";
import { seedCost, type SeedEntry, seedProblem } from "./scratch_seed.ts";

/** A job refused before it ran; the message is one line. */
export class JobRefused extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "JobRefused";
  }
}

/** A job to run. */
export interface JobSpec {
  /** Module bytes. */
  module: Uint8Array;
  /** argv[0] for the guest (default `main.wasm`). */
  programName?: string;
  /** Arguments after argv[0]; default the manifest's, else none. */
  args?: string[];
  /** Environment; default the manifest's, else empty. */
  env?: Record<string, string>;
  /** Standard input (default empty). */
  stdin?: Uint8Array;
  /** Memory cap in MiB (default the manifest's, else 128). */
  memoryMb?: number;
  /** Wall-clock limit in seconds (default the manifest's, else 30). */
  timeoutSeconds?: number;
  /** Cap on kept bytes per output stream (default 1 MiB). */
  outputBytes?: number;
  /**
   * Fuel budget (default the manifest's, else derived from the timeout with
   * {@link DEFAULT_LIMITS}.fuelPerSecond).
   */
  fuel?: number;
  /** Host directories (read-only unless marked writable). */
  preopens?: Preopen[];
  /** Guest path of a writable in-memory scratch directory. */
  scratch?: string;
  /**
   * What the scratch directory starts with, charged to the job's memory
   * budget ({@link seedCost}); refused when it does not fit.
   */
  scratchSeed?: SeedEntry[];
  /** The job's manifest; its module_hash must match the module. */
  manifest?: JobManifest;
  /** Nonce to bind the receipt to (default the manifest's, else random). */
  nonce?: string;
  /** Job id (default a random UUID). */
  jobId?: string;
  /** Cancels the job while it waits or runs (its client went away). */
  signal?: AbortSignal;
}

/** A finished job. */
export interface JobResult {
  /** The signed receipt. */
  receipt: Receipt;
  /** The raw outcome, with output bytes. */
  outcome: ExecuteOutcome;
}

/** What runs jobs and signs receipts. */
export interface JobContext {
  /** Sandbox processes. */
  sandbox: SandboxPool;
  /** The node key that signs receipts. */
  key: NodeKey;
  /** Metered modules (default one in-memory cache per process). */
  modules?: MeteredModuleCache;
}

const sharedModules = new MeteredModuleCache();

const round = (value: number, digits = 3) =>
  Math.round(value * 10 ** digits) / 10 ** digits;

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Runs a job in the sandbox and returns its signed receipt. */
export async function runJob(
  spec: JobSpec,
  context: JobContext,
): Promise<JobResult> {
  const moduleHash = await sha256Ref(spec.module);
  const manifest = spec.manifest;
  if (manifest && manifest.module_hash !== moduleHash) {
    throw new JobRefused(
      `module hash mismatch: the manifest wants ${manifest.module_hash}, the module is ${moduleHash}`,
    );
  }
  const args = spec.args ?? manifest?.args ?? [];
  const env = spec.env ?? manifest?.env ?? {};
  const stdin = spec.stdin ?? new Uint8Array();
  const timeoutSeconds = spec.timeoutSeconds ?? manifest?.timeout_seconds ??
    DEFAULT_LIMITS.timeoutSeconds;
  const fuel = spec.fuel ?? manifest?.fuel ??
    Math.min(
      MAX_FUEL,
      Math.ceil(timeoutSeconds * DEFAULT_LIMITS.fuelPerSecond),
    );
  const memoryMb = spec.memoryMb ?? manifest?.memory_mb ??
    DEFAULT_LIMITS.memoryMb;
  const outputBytes = spec.outputBytes ?? DEFAULT_LIMITS.outputBytes;
  const chosen = { memoryMb, timeoutSeconds, outputBytes, fuel };
  for (const [name, value] of Object.entries(chosen)) {
    const problem = limitProblem(name as keyof typeof chosen, value);
    if (problem) throw new JobRefused(`${name} ${problem}`);
  }
  if (stdin.length > memoryMb * MIB) {
    throw new JobRefused(
      `memory limit: ${stdin.length} bytes of standard input do not fit the job's ${memoryMb} MiB memory budget`,
    );
  }
  const seed = spec.scratchSeed;
  if (seed) {
    if (!spec.scratch) {
      throw new JobRefused("a scratch seed needs a scratch directory");
    }
    const problem = seedProblem(seed);
    if (problem) throw new JobRefused(`scratch seed: ${problem}`);
    const cost = seedCost(seed);
    if (stdin.length + cost > memoryMb * MIB) {
      throw new JobRefused(
        `memory limit: the scratch seed (${cost} bytes with its entries) and standard input do not fit the job's ${memoryMb} MiB memory budget`,
      );
    }
  }
  const limits: AppliedLimits = {
    memory_mb: memoryMb,
    timeout_seconds: timeoutSeconds,
    fuel,
    output_bytes: outputBytes,
  };
  const preopens: PreopenRecord[] = (spec.preopens ?? []).map((p) => ({
    guest: p.guest,
    access: p.writable ? "read-write" : "read-only",
  }));
  if (spec.scratch) {
    preopens.push({
      guest: spec.scratch,
      access: "scratch",
      ...(seed ? { seed_sha256: await seedDigest(seed) } : {}),
    });
  }
  if (preopens.length > 0) limits.preopens = preopens;
  // Before anything runs or is cached: imports Phase cannot satisfy are
  // one line, never a signed trap.
  checkLink(spec.module);
  const metered = await (context.modules ?? sharedModules).metered(
    spec.module,
    moduleHash,
    context.key.seed,
  );
  const outcome = await context.sandbox.run({
    module: metered.bytes,
    moduleKey: metered.key,
    fuel,
    programName: spec.programName ?? "main.wasm",
    args,
    env,
    stdin,
    memoryBytes: limits.memory_mb * MIB,
    outputLimit: limits.output_bytes,
    timeoutMs: limits.timeout_seconds * 1000,
    preopens: spec.preopens,
    scratch: spec.scratch,
    scratchSeed: seed,
    signal: spec.signal,
  });
  const utf8 = isUtf8(outcome.stdout) && isUtf8(outcome.stderr);
  const text = (bytes: Uint8Array) =>
    utf8 ? new TextDecoder().decode(bytes) : toBase64(bytes);
  const receipt = await signReceipt({
    version: 1,
    job_id: spec.jobId ?? crypto.randomUUID(),
    nonce: spec.nonce ?? manifest?.nonce ?? randomHex(16),
    timestamp: new Date().toISOString(),
    module_hash: moduleHash,
    input_hash: await inputHash({ args, env, stdin }),
    limits,
    execution: {
      status: outcome.status,
      exit_code: outcome.exitCode,
      wall_time_ms: round(outcome.wallTimeMs),
      cpu_time_ms: outcome.status === "timeout"
        ? null
        : round(outcome.cpuTimeMs),
      memory_peak_mb: round(outcome.memoryPeakBytes / MIB),
      fuel_consumed: outcome.fuelConsumed,
      error: outcome.error,
    },
    stdout: text(outcome.stdout),
    stderr: text(outcome.stderr),
    stdout_truncated: outcome.stdoutTruncated,
    stderr_truncated: outcome.stderrTruncated,
    output_encoding: utf8 ? "utf-8" : "base64",
    runtime: { name: "phase-deno", version: RUNTIME_VERSION, wasi: "preview1" },
    node_peer_id: context.key.peerId,
  }, context.key);
  return { receipt, outcome };
}
