/**
 * Runs one WASI guest inside the current process. This is the code that
 * executes guests; it is loaded only by the sandbox worker (and by in-process
 * benchmarks). Wall-clock limits are enforced outside, by killing the worker.
 * @module
 */
import process from "node:process";
import { capMemory, MIB, ModuleError } from "./wasm_binary.ts";
import {
  FUEL_AT_INSTANTIATION,
  FUEL_EXPORT,
  GROW_FAILED_EXPORT,
} from "./metering.ts";
import {
  createWasiEnv,
  type Preopen,
  type StreamName,
  WASIProcExit,
} from "./wasi_env.ts";
import type { ExecutionStatus } from "../schemas/mod.ts";

/** One guest run. */
export interface ExecuteRequest {
  /** The module bytes: metered (runner/metering.ts) for jobs with fuel. */
  module: Uint8Array;
  /** Names the bytes of `module` in the compile cache. */
  moduleKey: string;
  /**
   * Fuel budget of a metered module (default: practically unlimited).
   * Refused for a module without metering.
   */
  fuel?: number;
  /** argv[0] shown to the guest. */
  programName: string;
  /** Arguments after argv[0]. */
  args: string[];
  /** Environment variables. */
  env: Record<string, string>;
  /** Bytes on standard input. */
  stdin: Uint8Array;
  /** Linear memory cap in bytes. */
  memoryBytes: number;
  /** Cap on kept bytes per output stream. */
  outputLimit: number;
  /** Read-only host directories. */
  preopens: Preopen[];
  /** Guest path of a writable in-memory scratch directory, if any. */
  scratch?: string;
  /** Sees output chunks as they are written. */
  onOutput?: (stream: StreamName, chunk: Uint8Array) => void;
}

/** What happened in one guest run. */
export interface ExecuteOutcome {
  /** How the run ended. */
  status: ExecutionStatus;
  /** Exit code, or null when the guest did not exit by itself. */
  exitCode: number | null;
  /** One-line reason when status is not `exited`. */
  error: string | null;
  /** Wall time of instantiation plus run. */
  wallTimeMs: number;
  /** CPU time of this process during the run. */
  cpuTimeMs: number;
  /** Final (= peak) size of linear memory. */
  memoryPeakBytes: number;
  /** Fuel the guest used, or null for a module without metering. */
  fuelConsumed: number | null;
  /** Kept standard output. */
  stdout: Uint8Array;
  /** Kept standard error. */
  stderr: Uint8Array;
  /** Output past the cap was dropped. */
  stdoutTruncated: boolean;
  /** Output past the cap was dropped. */
  stderrTruncated: boolean;
}

const COMPILE_CACHE_SIZE = 32;
const compiled = new Map<string, WebAssembly.Module>();

/** Compiles a module with its memory capped, caching by (hash, cap). */
function compile(request: ExecuteRequest): WebAssembly.Module {
  const key = `${request.moduleKey}/${request.memoryBytes}`;
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  const { bytes } = capMemory(request.module, request.memoryBytes);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (error) {
    throw new ModuleError(
      `not a valid WebAssembly module: ${(error as Error).message}`,
    );
  }
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === "_start" && e.kind === "function")) {
    throw new ModuleError(
      "the module exports no _start function (not a WASI command)",
    );
  }
  if (!exports.some((e) => e.name === "memory" && e.kind === "memory")) {
    throw new ModuleError("the module exports no memory");
  }
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module !== "wasi_snapshot_preview1") {
      throw new ModuleError(
        `the module imports ${i.module}.${i.name}, which Phase does not provide`,
      );
    }
  }
  if (
    request.fuel !== undefined &&
    !exports.some((e) => e.name === FUEL_EXPORT && e.kind === "global")
  ) {
    throw new ModuleError("a fuel budget needs a metered module");
  }
  compiled.set(key, module);
  if (compiled.size > COMPILE_CACHE_SIZE) {
    compiled.delete(compiled.keys().next().value!);
  }
  return module;
}

function trapMessage(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return "stack overflow";
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Compiles (or reuses) and runs the guest to its end. Throws
 * {@link ModuleError} when the module cannot run at all; every way a started
 * guest can end is reported in the outcome, never thrown.
 */
export function execute(request: ExecuteRequest): ExecuteOutcome {
  const module = compile(request);
  let fuel: WebAssembly.Global | undefined;
  const env = createWasiEnv({
    argv: [request.programName, ...request.args],
    env: request.env,
    stdin: request.stdin,
    outputLimit: request.outputLimit,
    preopens: request.preopens,
    scratch: request.scratch,
    scratchBytes: request.memoryBytes,
    onOutput: request.onOutput,
    charge: (units) => {
      if (fuel && units > 0) fuel.value -= BigInt(units);
    },
  });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let status: ExecutionStatus = "exited";
  let exitCode: number | null = null;
  let error: string | null = null;
  let instance: WebAssembly.Instance | undefined;
  let budget = 0n;
  try {
    instance = new WebAssembly.Instance(module, {
      wasi_snapshot_preview1: env.imports,
    });
    fuel = instance.exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
    if (fuel) {
      // What a start function used counts against the budget.
      budget = BigInt(request.fuel ?? Number.MAX_SAFE_INTEGER);
      fuel.value = budget - (FUEL_AT_INSTANTIATION - fuel.value);
    }
    exitCode = env.wasi.start(
      instance as unknown as Parameters<typeof env.wasi.start>[0],
    );
  } catch (thrown) {
    if (thrown instanceof WASIProcExit) {
      exitCode = thrown.code;
    } else {
      status = "trap";
      error = `trap: ${trapMessage(thrown)}`;
    }
  }
  const wallTimeMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const exports = instance?.exports ?? {};
  const memoryPeakBytes =
    (exports.memory as WebAssembly.Memory | undefined)?.buffer.byteLength ?? 0;
  const fuelLeft = (exports[FUEL_EXPORT] as WebAssembly.Global | undefined)
    ?.value as bigint | undefined;
  const growFailed =
    (exports[GROW_FAILED_EXPORT] as WebAssembly.Global | undefined)?.value ===
      1;
  const failed = status === "trap" || exitCode !== 0;
  if (fuelLeft !== undefined && fuelLeft < 0n && status === "trap") {
    status = "fuel_exhausted";
    error = `fuel exhausted: the guest used its budget of ${budget} fuel`;
  } else if (growFailed && failed) {
    status = "memory_limit";
    error = `memory limit: the guest reached the ${
      Math.round(request.memoryBytes / MIB)
    } MiB cap`;
  }
  return {
    status,
    exitCode,
    error,
    wallTimeMs,
    cpuTimeMs: (cpu.user + cpu.system) / 1000,
    memoryPeakBytes,
    fuelConsumed: fuelLeft === undefined ? null : Number(budget - fuelLeft),
    stdout: env.stdout.bytes(),
    stderr: env.stderr.bytes(),
    stdoutTruncated: env.stdout.truncated,
    stderrTruncated: env.stderr.truncated,
  };
}
