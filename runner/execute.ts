/**
 * Runs one WASI guest inside the current process. This is the code that
 * executes guests; it is loaded only by the sandbox worker (and by in-process
 * benchmarks). Wall-clock limits are enforced outside, by killing the worker.
 * @module
 */
import { cpuUsage } from "./cpu_usage.ts";
import { JobMemory } from "./job_memory.ts";
import { checkLink } from "./link.ts";
import {
  FUEL_EXPORT,
  GROW_FAILED_EXPORT,
  MEMORY_PAGES_EXPORT,
  START_EXPORT,
} from "./metering.ts";
import { initialOutputBytes, type SharedOutput } from "./shared_output.ts";
import {
  capMemory,
  MIB,
  ModuleError,
  TABLE_ENTRY_BYTES,
  WASM_PAGE,
} from "./wasm_binary.ts";
import {
  createWasiEnv,
  type Preopen,
  type StreamName,
  WASIProcExit,
} from "./wasi_env.ts";
import type { ExecutionStatus } from "../schemas/mod.ts";
import { SeedTooLarge } from "./scratch_fs.ts";
import type { SeedEntry } from "./scratch_seed.ts";

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
  /**
   * The job's memory budget in bytes: linear memory, tables, standard
   * input, scratch files and kept output together (runner/job_memory.ts).
   */
  memoryBytes: number;
  /** Cap on kept bytes per output stream. */
  outputLimit: number;
  /** Host directories (read-only unless marked writable). */
  preopens: Preopen[];
  /** Guest path of a writable in-memory scratch directory, if any. */
  scratch?: string;
  /** What the scratch directory starts with (charged to the budget). */
  scratchSeed?: SeedEntry[];
  /**
   * Where to keep output, so another thread can read it while the guest
   * runs (default: captures of this run's own).
   */
  output?: Record<StreamName, SharedOutput>;
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
  /**
   * The most of the job's memory budget in use at once: linear memory,
   * tables, standard input, scratch files and kept output.
   */
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

/** A compiled module and what its budget is charged at the start. */
interface Compiled {
  module: WebAssembly.Module;
  initialBytes: number;
  tableBytes: number;
}

const compiled = new Map<string, Compiled>();

/** Compiles a module with its memory capped, caching by (hash, cap). */
function compile(request: ExecuteRequest): Compiled {
  const key = `${request.moduleKey}/${request.memoryBytes}`;
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  checkLink(request.module);
  const capped = capMemory(request.module, request.memoryBytes);
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(capped.bytes as Uint8Array<ArrayBuffer>);
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
  if (
    request.fuel !== undefined &&
    !exports.some((e) => e.name === FUEL_EXPORT && e.kind === "global")
  ) {
    throw new ModuleError("a fuel budget needs a metered module");
  }
  const entry = {
    module,
    initialBytes: capped.initialPages * WASM_PAGE,
    tableBytes: capped.tableEntries * TABLE_ENTRY_BYTES,
  };
  compiled.set(key, entry);
  if (compiled.size > COMPILE_CACHE_SIZE) {
    compiled.delete(compiled.keys().next().value!);
  }
  return entry;
}

/** Thrown out of a host call whose fuel charge overdraws the budget. */
class FuelExhausted extends Error {}

function trapMessage(error: unknown): string {
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return "stack overflow";
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

const mib = (bytes: number) => `${Math.ceil(bytes / MIB * 10) / 10} MiB`;

/**
 * Compiles (or reuses) and runs the guest to its end. Throws
 * {@link ModuleError} when the module cannot run at all (including when
 * its tables, memory at start and standard input alone exceed the budget);
 * every way a started guest can end is reported in the outcome, never
 * thrown.
 */
export function execute(request: ExecuteRequest): ExecuteOutcome {
  const { module, initialBytes, tableBytes } = compile(request);
  // Each output stream holds its first step from the start (so a guest
  // that spent its budget elsewhere can still say so): charged up front.
  const outputBytes = 2 * initialOutputBytes(request.outputLimit);
  const fixed = request.stdin.length + tableBytes + outputBytes;
  if (fixed + initialBytes > request.memoryBytes) {
    throw new ModuleError(
      `memory limit: the module's tables (${
        mib(tableBytes)
      }), memory at start (${mib(initialBytes)}), standard input (${
        mib(request.stdin.length)
      }) and output buffers (${mib(outputBytes)}) need more than the job's ${
        mib(request.memoryBytes)
      } budget`,
    );
  }
  const memory = new JobMemory(request.memoryBytes, fixed);
  let fuel: WebAssembly.Global | undefined;
  let env: ReturnType<typeof createWasiEnv>;
  try {
    env = createEnv();
  } catch (error) {
    if (error instanceof SeedTooLarge) throw new ModuleError(error.message);
    throw error;
  }
  function createEnv() {
    return createWasiEnv({
      argv: [request.programName, ...request.args],
      env: request.env,
      stdin: request.stdin,
      outputLimit: request.outputLimit,
      preopens: request.preopens,
      scratch: request.scratch,
      scratchSeed: request.scratchSeed,
      scratchBytes: request.memoryBytes,
      budget: memory,
      output: request.output,
      charge: (units) => {
        if (!fuel || units <= 0) return;
        fuel.value -= BigInt(units);
        if (fuel.value < 0n) throw new FuelExhausted();
      },
    });
  }
  const cpuBefore = cpuUsage();
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
    const exports = instance.exports;
    const linear = exports.memory as WebAssembly.Memory;
    const pages = exports[MEMORY_PAGES_EXPORT] as
      | WebAssembly.Global
      | undefined;
    memory.attach(
      () => linear.buffer.byteLength,
      (limit) => {
        if (pages) pages.value = BigInt(limit);
      },
    );
    fuel = exports[FUEL_EXPORT] as WebAssembly.Global | undefined;
    if (fuel) {
      budget = BigInt(request.fuel ?? Number.MAX_SAFE_INTEGER);
      fuel.value = budget;
    }
    env.wasi.inst = instance as unknown as typeof env.wasi.inst;
    // The start function runs here, not at instantiation, so it pays from
    // the job's budget like the rest of the guest.
    (exports[START_EXPORT] as (() => void) | undefined)?.();
    (exports._start as () => void)();
    exitCode = 0;
  } catch (thrown) {
    if (thrown instanceof WASIProcExit) {
      // preview1 exit codes are u32; the shim hands over an i32.
      exitCode = thrown.code >>> 0;
    } else {
      status = "trap";
      error = `trap: ${trapMessage(thrown)}`;
    }
  }
  const wallTimeMs = performance.now() - started;
  const cpuAfter = cpuUsage();
  const exports = instance?.exports ?? {};
  const fuelLeft = (exports[FUEL_EXPORT] as WebAssembly.Global | undefined)
    ?.value as bigint | undefined;
  const growRefused =
    (exports[GROW_FAILED_EXPORT] as WebAssembly.Global | undefined)?.value ===
      1;
  const failed = status === "trap" || exitCode !== 0;
  if (fuelLeft !== undefined && fuelLeft < 0n) {
    // Checks sit at entries and loop headers, so a guest can end between
    // two of them over its budget: that is a fuel stop too, never `exited`.
    status = "fuel_exhausted";
    error = `fuel exhausted: the guest used its budget of ${budget} fuel`;
  } else if (growRefused && failed) {
    status = "memory_limit";
    error = `memory limit: the guest reached the job's ${
      mib(request.memoryBytes)
    } memory budget`;
  }
  return {
    status,
    exitCode,
    error,
    wallTimeMs,
    cpuTimeMs: (cpuAfter.user + cpuAfter.system - cpuBefore.user -
      cpuBefore.system) / 1000,
    memoryPeakBytes: memory.peak,
    fuelConsumed: fuelLeft === undefined ? null : Number(budget - fuelLeft),
    stdout: env.stdout.bytes(),
    stderr: env.stderr.bytes(),
    stdoutTruncated: env.stdout.truncated,
    stderrTruncated: env.stderr.truncated,
  };
}
